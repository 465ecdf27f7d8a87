"""Deployment tooling: the KafkaTopic generator, the kustomize renderer and the offline manifest validator.

Run from the repository root:

* ``python -m deploy.topics`` writes ``deploy/topics/`` from the topic registry (``--check`` only compares);
* ``python -m deploy.validate`` renders every overlay with kustomize and validates it offline.
"""
