"""What an event came to: one ``Outcome``, stored as plain JSON, read back as a ``Result``."""

from __future__ import annotations

import json

import pytest
from media_pipeline.pipeline.flow import Outcome, Result
from media_pipeline.pipeline.sqs import METRIC_NAMES

# The outcomes as idempotency records hold them (written for 7 days, by this code or the code
# before it): a value that changed would make a duplicate's record unreadable.
STORED = (
    "ready",
    "partial",
    "refreshed",
    "rejected",
    "duplicate",
    "stale",
    "superseded",
    "abandoned",
    "deleted",
)


def test_a_result_is_stored_as_plain_json_and_read_back_as_it_was():
    result = Result(Outcome.REJECTED, "abc", {"reason": "corrupt", "message": "not an image"})

    stored = json.loads(json.dumps(result.to_dict()))

    assert stored == {
        "outcome": "rejected",
        "image_id": "abc",
        "detail": {"reason": "corrupt", "message": "not an image"},
    }
    again = Result.from_dict(stored)
    assert again == result
    assert type(again.outcome) is Outcome


@pytest.mark.parametrize("value", STORED)
def test_every_stored_outcome_reads_back(value):
    result = Result.from_dict({"outcome": value, "image_id": None, "detail": {}})
    assert result == Result(Outcome(value))
    assert result.outcome.value == value


def test_the_outcomes_are_exactly_the_stored_ones_and_each_has_its_metric():
    assert {o.value for o in Outcome} == set(STORED)
    assert set(METRIC_NAMES) == set(Outcome)
