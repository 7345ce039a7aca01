"""Settings of the reconciler function (``reconcile.Reconciler``, run on a schedule)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from media_pipeline.config.env import integer, required
from media_pipeline.model import Half
from media_pipeline.reconcile import HalfQueues


@dataclass(frozen=True, kw_only=True)
class ReconcilerSettings:
    media_table: str
    uploads_bucket: str
    upload_prefix: str
    queues: dict[Half, HalfQueues]
    stuck_after_seconds: int
    """An item waiting longer than this is stuck. Above a job's whole retry window
    (max receive count x visibility timeout), so that a job still being retried is not."""
    max_requeues: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ReconcilerSettings:
        return cls(
            media_table=required(env, "MEDIA_TABLE"),
            uploads_bucket=required(env, "UPLOADS_BUCKET"),
            upload_prefix=env.get("UPLOAD_PREFIX", "uploads/"),
            queues={
                half: HalfQueues(
                    jobs=required(env, f"{half.stage.upper()}_QUEUE_URL"),
                    dead_letters=required(env, f"{half.stage.upper()}_DLQ_URL"),
                )
                for half in Half
            },
            stuck_after_seconds=integer(env, "STUCK_AFTER_SECONDS", 3600),
            max_requeues=integer(env, "MAX_REQUEUES", 2, minimum=0),
        )
