"""Test harness: a real broker on demand, unique names, produce/consume helpers, waiting on conditions."""
