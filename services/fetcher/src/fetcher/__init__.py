"""fetcher: consumes ``transcript.done``, downloads and stores the transcript, emits ``transcripts.ready``.

``python -m fetcher`` runs the worker; ``fetcher.app.create_app(settings)`` builds the faust app. Design notes:
``docs/fetcher.md``.
"""
