"""S3 access for the workers: find the uploaded object version, read it, write renditions.

Every read is pinned to the event's ETag with ``IfMatch``: if the key now holds newer content
(or nothing), the event is superseded and its work is skipped; the newer upload has its own event.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_pipeline.events import ObjectCreated, strip_etag
from media_pipeline.model import Upload

if TYPE_CHECKING:  # the reconciler reads objects without the image stack (no Pillow layer)
    from media_pipeline.imaging import Rendition

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_PRECONDITION_FAILED = {"412", "PreconditionFailed"}


class ObjectSuperseded(Exception):
    """The event's object version is gone: replaced by newer content or deleted."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    """Whether S3 answered that the key (or version) does not exist."""
    return _code(error) in _NOT_FOUND


def locate(s3: Any, event: ObjectCreated) -> Upload:
    """Resolve the event's key against S3 and confirm the object version still exists.

    Tries the raw key first and its percent-decoding second (LocalStack encodes keys in
    EventBridge events; AWS and moto do not), each pinned to the event's ETag.
    """
    replaced = False
    for key in event.candidate_keys():
        try:
            head = s3.head_object(
                **_object_args(event.bucket, key, event), IfMatch=_quoted(event.etag)
            )
        except ClientError as error:
            if _code(error) in _PRECONDITION_FAILED:
                replaced = True
                continue
            if _code(error) in _NOT_FOUND:
                continue
            raise
        return Upload(
            bucket=event.bucket,
            key=key,
            etag=strip_etag(head["ETag"]),
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType") or "application/octet-stream",
            sequencer=event.sequencer,
            version_id=event.version_id,
            uploaded_at=event.event_time,
        )
    state = "replaced by newer content" if replaced else "deleted"
    raise ObjectSuperseded(f"s3://{event.bucket}/{event.raw_key} was {state} since the event")


def is_current(s3: Any, upload: Upload) -> bool:
    """Whether the upload's ETag is what the key holds now (its latest version, when versioned).

    Orders two uploads of one key that an event's sequencer cannot: the one S3 holds now is the
    newer (``MediaTable.claim``).
    """
    try:
        s3.head_object(Bucket=upload.bucket, Key=upload.key, IfMatch=_quoted(upload.etag))
    except ClientError as error:
        if _code(error) in _PRECONDITION_FAILED | _NOT_FOUND:
            return False
        raise
    return True


_CHUNK = 1 << 20


class Downloaded(bytes):
    """An object's bytes with their SHA-256 (hex), taken chunk by chunk as they arrived."""

    sha256: str


def read(s3: Any, upload: Upload, *, sha256: bool = False) -> bytes:
    """Download the object version the upload names; with ``sha256``, hash it on the way in
    (a :class:`Downloaded`: the hash costs no extra pass over the bytes after the download)."""
    try:
        response = s3.get_object(
            **_object_args(upload.bucket, upload.key, upload), IfMatch=_quoted(upload.etag)
        )
    except ClientError as error:
        if _code(error) in _PRECONDITION_FAILED | _NOT_FOUND:
            raise ObjectSuperseded(
                f"s3://{upload.bucket}/{upload.key} changed while reading"
            ) from None
        raise
    with response["Body"] as body:
        if not sha256:
            return body.read()
        digest, chunks = hashlib.sha256(), []
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
            chunks.append(chunk)
    data = Downloaded(b"".join(chunks))
    data.sha256 = digest.hexdigest()
    return data


def _quoted(etag: str) -> str:
    """An entity tag as HTTP conditions carry it: in double quotes."""
    return f'"{etag}"'


def _object_args(bucket: str, key: str, version: ObjectCreated | Upload) -> dict[str, str]:
    args = {"Bucket": bucket, "Key": key}
    if version.version_id:
        args["VersionId"] = version.version_id
    return args


def rendition_prefix(image_id: str) -> str:
    """Where every rendition of an image lives in the renditions bucket (all its versions)."""
    return f"{image_id}/"


def rendition_key(upload: Upload, rendition: Rendition, fingerprint: str) -> str:
    """Deterministic: the same object version made with the same settings (``fingerprint``)
    always maps to the same key (reruns overwrite identical bytes); a new version (new ETag) or
    other settings never collide with an older one."""
    name = f"{rendition.name}-{fingerprint}" if fingerprint else rendition.name
    return f"{rendition_prefix(upload.id)}{upload.etag}/{name}.{rendition.extension}"


def put_renditions(
    s3: Any,
    bucket: str,
    upload: Upload,
    renditions: tuple[Rendition, ...],
    *,
    fingerprints: dict[str, str],
    existing: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write the renditions and return the record stored on the media item (name -> details).

    A rendition whose key is already recorded in ``existing`` (the item's renditions: same
    version, same settings) is not written again and keeps its record.
    """
    stored: dict[str, dict[str, Any]] = {}
    for rendition in renditions:
        key = rendition_key(upload, rendition, fingerprints.get(rendition.name, ""))
        kept = (existing or {}).get(rendition.name)
        if kept and kept.get("key") == key and kept.get("bucket") == bucket:
            stored[rendition.name] = kept
            continue
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=rendition.data,
            ContentType=rendition.content_type,
            CacheControl="public, max-age=31536000, immutable",
            Metadata={"image-id": upload.id, "source-etag": upload.etag},
        )
        stored[rendition.name] = {
            "bucket": bucket,
            "key": key,
            "width": rendition.width,
            "height": rendition.height,
            "format": rendition.format,
            "content_type": rendition.content_type,
            "bytes": rendition.size,
        }
    return stored


def delete_renditions(
    s3: Any, bucket: str, renditions: dict[str, dict[str, Any]], keep: set[str]
) -> None:
    """Delete rendition objects of an older version, except keys still in use."""
    keys = sorted({r["key"] for r in renditions.values()} - keep)
    if keys:
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
