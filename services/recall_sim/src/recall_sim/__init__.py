"""recall_sim: a Recall.ai API simulator for local runs, demos and tests (never deployed to production).

``python -m recall_sim`` serves it; ``recall_sim.app.create_app(settings)`` builds the ASGI app.
"""
