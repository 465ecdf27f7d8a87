"""Reconciliation against Recall's API, and backfill: ``recall-pipeline reconcile`` / ``backfill``."""
