"""``recall-pipeline``: the operator CLI of the Recall.ai transcription pipeline."""
