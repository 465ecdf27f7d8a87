"""The simulator's routers: Recall's API, downloads, and the admin API."""
