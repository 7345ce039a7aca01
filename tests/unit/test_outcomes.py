"""What an event came to: one ``Outcome``, logged as plain JSON, each with its metric."""

from __future__ import annotations

import json

from media_pipeline.pipeline.flow import Outcome, Result
from media_pipeline.pipeline.sqs import METRIC_NAMES

# The outcomes as the workers' logs carry them: log queries and dashboards select on these, and
# a value that changed would silently stop matching.
LOGGED = (
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


def test_a_result_is_logged_as_plain_json():
    result = Result(Outcome.REJECTED, "abc", {"reason": "corrupt", "message": "not an image"})

    assert json.loads(json.dumps(result.to_dict())) == {
        "outcome": "rejected",
        "image_id": "abc",
        "detail": {"reason": "corrupt", "message": "not an image"},
    }


def test_the_outcomes_are_exactly_the_logged_ones_and_each_has_its_metric():
    assert {o.value for o in Outcome} == set(LOGGED)
    assert set(METRIC_NAMES) == set(Outcome)
    assert len(set(METRIC_NAMES.values())) == len(METRIC_NAMES)
