from tests.support.recall_sim import recall_sim  # noqa: F401 - the fixture, for this package's tests
