"""The S3 "Object Created" and "Object Deleted" events, as EventBridge delivers them to SQS.

The SQS body of an EventBridge target is the whole EventBridge event. ``sequencer`` strings
have different lengths; they are left-padded to a fixed width so that string comparison (in
code and in DynamoDB conditions) orders events for one key. What the backends send differently
(the key's encoding, the ETag field's spelling) is read as ``backends`` says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from media_pipeline.backends import candidate_keys, event_etag

OBJECT_CREATED = "Object Created"
OBJECT_DELETED = "Object Deleted"
SEQUENCER_WIDTH = 32
# ``detail.requester`` of the jobs the pipeline's own operators send (the reconciler, reprocess):
# work that was asked for again, not a first delivery of S3's event.
OPERATOR_REQUESTER = "media-pipeline-reconciler"


class InvalidEvent(ValueError):
    """The message is not an S3 Object Created (or Deleted) event this pipeline can act on."""


def normalise_sequencer(sequencer: str) -> str:
    """Left-pad an S3 sequencer so that lexicographic order is event order."""
    value = sequencer.strip().upper()
    if not value or any(c not in "0123456789ABCDEF" for c in value):
        raise InvalidEvent(f"sequencer {sequencer!r} is not a hexadecimal string")
    if len(value) > SEQUENCER_WIDTH:
        raise InvalidEvent(f"sequencer {sequencer!r} is longer than {SEQUENCER_WIDTH} digits")
    return value.rjust(SEQUENCER_WIDTH, "0")


def strip_etag(etag: str) -> str:
    """ETags arrive with or without their surrounding quotes; the pipeline stores them bare."""
    return etag.strip().strip('"')


@dataclass(frozen=True)
class ObjectCreated:
    """One uploaded object version, as named by its event."""

    bucket: str
    raw_key: str
    etag: str
    size: int
    sequencer: str
    version_id: str | None
    event_time: str

    reprocess_run: str = ""
    """``detail.reprocess.run`` of a job sent by ``scripts/reprocess.py`` (one id per run), so
    that the workers' logs say which run a job belongs to."""
    requester: str = ""
    """``detail.requester``: who wrote the object (an account or service), or OPERATOR_REQUESTER
    for a job the reconciler or a reprocess sent."""

    @property
    def from_operator(self) -> bool:
        """Whether the reconciler or a reprocess sent this job (not S3 through EventBridge)."""
        return self.requester == OPERATOR_REQUESTER or bool(self.reprocess_run)

    def candidate_keys(self) -> tuple[str, ...]:
        """The keys the event may name (``backends.candidate_keys``)."""
        return candidate_keys(self.raw_key)


@dataclass(frozen=True)
class ObjectDeleted:
    """An object (or, with versioning, its current version) deleted from the uploads bucket."""

    bucket: str
    raw_key: str
    sequencer: str
    version_id: str | None
    deletion_type: str  # "Permanently Deleted" | "Delete Marker Created" ("" from moto: backends)
    event_id: str
    event_time: str

    def candidate_keys(self) -> tuple[str, ...]:
        """The keys the event may name (``backends.candidate_keys``)."""
        return candidate_keys(self.raw_key)


def parse_job(body: str) -> ObjectCreated | ObjectDeleted:
    """Parse a job queue's message: an S3 Object Created or Object Deleted event."""
    payload = _payload(body)
    if payload.get("detail-type") == OBJECT_DELETED and payload.get("source") == "aws.s3":
        return _parse_object_deleted(payload)
    return _parse_object_created(payload)


def _parse_object_deleted(payload: dict[str, Any]) -> ObjectDeleted:
    detail = payload.get("detail")
    bucket, obj = _bucket_and_object(detail, ("key", "sequencer"))
    return ObjectDeleted(
        bucket=bucket["name"],
        raw_key=obj["key"],
        sequencer=normalise_sequencer(obj["sequencer"]),
        version_id=_version_id(obj),
        deletion_type=str(detail.get("deletion-type", "")),
        event_id=str(payload.get("id", "")),
        event_time=str(payload.get("time", "")),
    )


def _bucket_and_object(
    detail: Any, required: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``detail.bucket`` and ``detail.object`` of an S3 event, with the bucket's name and the
    object's ``required`` fields present as non-empty strings (the ETag in either spelling:
    ``backends.event_etag``)."""
    if not isinstance(detail, dict):
        raise InvalidEvent("detail is not an object")
    bucket = detail.get("bucket") or {}
    obj = detail.get("object") or {}
    if not isinstance(bucket, dict) or not isinstance(obj, dict):
        raise InvalidEvent("detail.bucket and detail.object must be objects")
    fields = [("detail.bucket.name", bucket.get("name"))]
    fields += [
        (
            f"detail.object.{name}",
            event_etag(obj) if name == "etag" else obj.get(name),
        )
        for name in required
    ]
    missing = [name for name, value in fields if not isinstance(value, str) or not value]
    if missing:
        raise InvalidEvent(f"event lacks {', '.join(missing)}")
    return bucket, obj


def _version_id(obj: dict[str, Any]) -> str | None:
    """The object's version id; None when the bucket is unversioned ("null")."""
    version_id = obj.get("version-id")
    return version_id if isinstance(version_id, str) and version_id != "null" else None


def _payload(body: str) -> dict[str, Any]:
    try:
        payload: Any = json.loads(body)
    except (TypeError, ValueError) as error:
        raise InvalidEvent(f"message body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise InvalidEvent("message body is not a JSON object")
    return payload


def parse_object_created(body: str) -> ObjectCreated:
    """Parse the SQS body that EventBridge wrote for an S3 Object Created event."""
    return _parse_object_created(_payload(body))


def _parse_object_created(payload: dict[str, Any]) -> ObjectCreated:
    event = EventBridgeEvent(payload)
    try:
        source, detail_type, detail = event.source, event.detail_type, event.detail
    except KeyError as error:
        raise InvalidEvent(f"EventBridge event lacks {error.args[0]!r}") from None
    if source != "aws.s3" or detail_type != OBJECT_CREATED:
        raise InvalidEvent(
            f"expected an aws.s3 {OBJECT_CREATED!r} event, "
            f"got source={source!r} detail-type={detail_type!r}"
        )
    bucket, obj = _bucket_and_object(detail, ("key", "etag", "sequencer"))
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidEvent(f"detail.object.size {size!r} is not a byte count")

    reprocess = detail.get("reprocess")
    run = reprocess.get("run") if isinstance(reprocess, dict) else None
    return ObjectCreated(
        bucket=bucket["name"],
        raw_key=obj["key"],
        etag=strip_etag(event_etag(obj)),
        size=size,
        sequencer=normalise_sequencer(obj["sequencer"]),
        version_id=_version_id(obj),
        event_time=str(payload.get("time", "")),
        reprocess_run=run if isinstance(run, str) else "",
        requester=str(detail.get("requester") or ""),
    )
