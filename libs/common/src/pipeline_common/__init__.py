"""Shared contracts and plumbing for the Recall.ai transcription pipeline."""
