"""transcriber."""
