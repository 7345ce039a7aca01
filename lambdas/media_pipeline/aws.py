"""AWS clients for the functions: endpoints from the standard AWS_ENDPOINT_URL variables only.

Retries are short on purpose. SQS redelivery is the pipeline's retry mechanism (with its DLQ and
alarm); the SDK only smooths over a blip, so that a failing call surfaces well within the
function's timeout and the last attempt can still record why it gave up.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# What X-Ray traces: every AWS call goes through botocore, and the functions make no other
# network calls. Left to itself, Powertools' Tracer patches every library the X-Ray SDK supports
# (requests, sqlite3, httplib, database drivers...), importing each one found at cold start.
TRACED_MODULES = ("botocore",)

CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=3,
    read_timeout=20,
    tcp_keepalive=True,
)


def client(service: str, config: Config | None = None) -> Any:
    """A client with the shared timeouts and retries, plus ``config`` (e.g. a signature version)."""
    merged = CONFIG.merge(config) if config else CONFIG
    return boto3.client(service, config=merged)  # type: ignore[call-overload]
