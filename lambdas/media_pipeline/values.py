"""Values as the pipeline writes them down: instants as ISO 8601 strings, numbers as plain JSON.

Every item, API answer and notification carries its times as UTC ISO 8601 with ``Z``, and its
numbers as ``int`` or ``float`` (DynamoDB hands them back as ``Decimal``, which ``json`` refuses).
Kept out of ``media_store``, the DynamoDB store, so that what only formats a value does not import
the store: the notifier, which reads items from the table's stream, carries no store at all.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def iso(epoch: float, timespec: str = "seconds") -> str:
    """A UTC instant as ISO 8601 with ``Z``, e.g. ``2026-11-23T10:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """Now, to the millisecond (``2026-11-23T10:00:00.123Z``): the items' ``created_at`` and
    ``updated_at``, whose order the indexes rely on."""
    return iso(time.time(), "milliseconds")


def to_plain(value: Any) -> Any:
    """A value read from DynamoDB as plain JSON-able Python: Decimals become ``int`` (when whole)
    or ``float``, sets become lists, through nested dicts and lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [to_plain(v) for v in value]
    return value
