"""Settings of the two SQS-driven workers (renditions and metadata).

A missing or malformed variable fails at import time (cold start) with a message naming it,
instead of a KeyError deep in a handler. The image settings themselves are read by
``config.rendering`` (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from media_pipeline.config.env import ConfigError, integer, required
from media_pipeline.config.rendering import (
    encode_options_from_env,
    include_gps_from_env,
    limits_from_env,
    parse_renditions,
    renditions_from_env,
)
from media_pipeline.duplicates_index import Policy
from media_pipeline.imaging import (
    DEFAULT_RENDITIONS,
    EncodeOptions,
    Limits,
    RenditionSpec,
)
from media_pipeline.model import DELETED_RETENTION_SECONDS

__all__ = [
    "ConfigError",
    "MetadataSettings",
    "RenditionsSettings",
    "WorkerSettings",
    "encode_options_from_env",
    "include_gps_from_env",
    "limits_from_env",
    "parse_renditions",
    "renditions_from_env",
]


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Settings shared by the two SQS-driven workers (renditions and metadata)."""

    media_table: str
    max_receive_count: int
    limits: Limits = field(default_factory=Limits)
    min_remaining_time_ms: int = 2000
    """A record is not started with less of the invocation left than this (or twice the
    slowest record so far): it goes back to the queue instead of being cut off."""
    jobs_queue_url: str = ""
    """JOBS_QUEUE_URL: the queue the records come from, where a failed record's next delivery
    is scheduled (ChangeMessageVisibility). Unset: the queue's visibility timeout decides."""
    retry_base_seconds: int = 10
    """RETRY_BASE_SECONDS: a transient failure is retried after about this long, doubling with
    each delivery ..."""
    retry_max_seconds: int = 900
    """RETRY_MAX_SECONDS: ... up to this (the queue's visibility timeout)."""

    @classmethod
    def _common(cls, env: Mapping[str, str]) -> dict:
        return {
            "media_table": required(env, "MEDIA_TABLE"),
            "max_receive_count": integer(env, "MAX_RECEIVE_COUNT", 5),
            "limits": limits_from_env(env),
            "min_remaining_time_ms": integer(env, "MIN_REMAINING_TIME_MS", 2000),
            "jobs_queue_url": env.get("JOBS_QUEUE_URL", ""),
            "retry_base_seconds": integer(env, "RETRY_BASE_SECONDS", 10, minimum=0),
            "retry_max_seconds": integer(env, "RETRY_MAX_SECONDS", 900, minimum=0),
        }


@dataclass(frozen=True, kw_only=True)
class RenditionsSettings(WorkerSettings):
    renditions_bucket: str
    renditions: tuple[RenditionSpec, ...] = DEFAULT_RENDITIONS
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    deleted_ttl_seconds: int = DELETED_RETENTION_SECONDS
    """How long the item of an image deleted in S3 is kept (DELETED) before its TTL."""
    duplicates_table: str = ""
    """DUPLICATES_TABLE: the app's band index and links (``duplicates_index``); unset: no
    duplicates are looked for, nor cleaned up."""
    duplicates_policy: Policy = Policy.RECORD
    """DUPLICATES_POLICY: ``record`` (default), ``reject`` or ``off``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RenditionsSettings:
        return cls(
            **cls._common(env),
            renditions_bucket=required(env, "RENDITIONS_BUCKET"),
            renditions=renditions_from_env(env),
            encode=encode_options_from_env(env),
            deleted_ttl_seconds=integer(env, "DELETED_TTL_SECONDS", cls.deleted_ttl_seconds),
            duplicates_table=env.get("DUPLICATES_TABLE", "").strip(),
            duplicates_policy=duplicates_policy_from_env(env),
        )


def duplicates_policy_from_env(env: Mapping[str, str]) -> Policy:
    raw = env.get("DUPLICATES_POLICY", "").strip() or Policy.RECORD.value
    try:
        return Policy(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable DUPLICATES_POLICY={raw!r} must be one of {', '.join(Policy)}"
        ) from None


@dataclass(frozen=True, kw_only=True)
class MetadataSettings(WorkerSettings):
    include_gps: bool = False
    """Record the GPS position (INCLUDE_GPS=true); by default only whether there is one."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> MetadataSettings:
        return cls(**cls._common(env), include_gps=include_gps_from_env(env))
