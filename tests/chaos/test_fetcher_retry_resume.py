"""The fetcher's retry wake-ups (the decision behind tests/chaos/test_fetcher_retry_crash.py): a wake-up resumes its
own retry when the worker died carrying it out, and is otherwise acted on only while the retry is scheduled."""

from __future__ import annotations

import pytest

from fetcher.state import Retry, Status, TranscriptState, due_retry

pytestmark = pytest.mark.unit

NOW_STATE = {"transcript_id": "t1", "first_seen_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("status", "sequence", "expected"),
    [
        (Status.RETRY_SCHEDULED, 3, True),
        (Status.BLOCKED, 3, True),
        (Status.FETCHING, 3, True),  # the retry was being carried out when the worker died: resume it
        (Status.FETCHING, 2, False),  # a stale wake-up
        (Status.READY, 3, False),
        (Status.REJECTED, 3, False),
        (Status.GONE, 3, False),
    ],
)
def test_a_wake_up_resumes_its_own_interrupted_retry(status: Status, sequence: int, expected: bool) -> None:
    state = TranscriptState.model_validate(
        {**NOW_STATE, "status": status, "retry": Retry(sequence=3, due_at="2025-01-01T00:00:01Z", reason="503")}
    )
    assert due_retry(state, sequence) is expected
    # A transcript being fetched for its transcript.done (no retry schedule) is never taken over by a wake-up.
    assert not due_retry(state.model_copy(update={"status": Status.FETCHING, "retry": None}), 3)
