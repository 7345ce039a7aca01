"""When a failed job comes back: exponential backoff with jitter, capped by the queue."""

from __future__ import annotations

import random

import pytest
from media_pipeline.pipeline.sqs import retry_delay_seconds


@pytest.mark.parametrize(
    ("receive_count", "low", "high"),
    [(1, 5, 10), (2, 10, 20), (3, 20, 40), (4, 30, 60), (9, 30, 60)],
)
def test_the_delay_doubles_per_delivery_half_of_it_random_and_never_past_the_ceiling(
    receive_count, low, high
):
    rng = random.Random(1)
    delays = {retry_delay_seconds(receive_count, 10, 60, rng) for _ in range(200)}
    assert low <= min(delays)
    assert max(delays) <= high
    assert len(delays) > 1  # jittered: failures that happened together spread out


def test_no_base_means_no_wait():
    assert retry_delay_seconds(3, 0, 60, random.Random(1)) == 0
