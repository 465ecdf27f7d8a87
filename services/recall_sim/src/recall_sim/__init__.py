"""recall_sim."""
