"""Settings of the notifier function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from media_pipeline.config.env import required


@dataclass(frozen=True, kw_only=True)
class NotifierSettings:
    topic_arn: str
    idempotency_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> NotifierSettings:
        return cls(
            topic_arn=required(env, "EVENTS_TOPIC_ARN"),
            idempotency_table=required(env, "IDEMPOTENCY_TABLE"),
        )
