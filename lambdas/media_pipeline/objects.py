"""S3 access for the workers: find the uploaded object version, read it, write renditions.

Every read is pinned to the event's ETag with ``IfMatch``: if the key now holds newer content
(or nothing), the event is superseded and its work is skipped; the newer upload has its own event.
A worker opens the object with one GET (:func:`open_version`): the answer's headers say which
version it is and how large, and its body is read only if the work is to be done.
"""

from __future__ import annotations

import hashlib
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from media_pipeline.events import ObjectCreated, strip_etag
from media_pipeline.model import ObjectVersion, rendition_keys

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


def locate(s3: Any, event: ObjectCreated) -> ObjectVersion:
    """Resolve the event's key against S3 and confirm the object version still exists, without
    reading it (a HEAD: the reconciler's way)."""
    version, _ = _request(s3.head_object, event)
    return version


class Source:
    """An object version opened by one GET: what it is (``version``) and its body, which is
    downloaded only when :meth:`read` is called. Close it (or use it as a context manager)
    when the body is not wanted."""

    def __init__(self, version: ObjectVersion, body: Any) -> None:
        self.version = version
        self._body = body

    def read(self, *, sha256: bool = False) -> bytes:
        """The object's bytes; with ``sha256``, hashed on the way in (a :class:`Downloaded`:
        the hash costs no extra pass over the bytes after the download)."""
        with self._body as body:
            if not sha256:
                return body.read()
            digest, chunks = hashlib.sha256(), []
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                chunks.append(chunk)
        data = Downloaded(b"".join(chunks))
        data.sha256 = digest.hexdigest()
        return data

    def close(self) -> None:
        """Give up the body unread (the connection is dropped, not returned to the pool)."""
        self._body.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_version(s3: Any, event: ObjectCreated) -> Source:
    """Open the event's object version with one GET pinned to its ETag: resolve the key, confirm
    the version still exists, and leave the body to be read or not.

    Tries each key the event may name (the raw key, then its percent-decoding: LocalStack
    encodes keys; ``backends``).
    """
    version, response = _request(s3.get_object, event)
    return Source(version, response["Body"])


def _request(call: Any, event: ObjectCreated) -> tuple[ObjectVersion, dict[str, Any]]:
    replaced = False
    for key in event.candidate_keys():
        try:
            response = call(**_object_args(event.bucket, key, event), IfMatch=_quoted(event.etag))
        except ClientError as error:
            if _code(error) in _PRECONDITION_FAILED:
                replaced = True
                continue
            if _code(error) in _NOT_FOUND:
                continue
            raise
        version = ObjectVersion(
            bucket=event.bucket,
            key=key,
            etag=strip_etag(response["ETag"]),
            size=int(response["ContentLength"]),
            content_type=response.get("ContentType") or "application/octet-stream",
            sequencer=event.sequencer,
            version_id=event.version_id,
            uploaded_at=event.event_time,
        )
        return version, response
    state = "replaced by newer content" if replaced else "deleted"
    raise ObjectSuperseded(f"s3://{event.bucket}/{event.raw_key} was {state} since the event")


def is_current(s3: Any, version: ObjectVersion) -> bool:
    """Whether the upload's ETag is what the key holds now (its latest version, when versioned).

    Orders two uploads of one key that an event's sequencer cannot (LocalStack's constant
    sequencer: ``backends``): the one S3 holds now is the newer (``model.resolve``).
    """
    try:
        s3.head_object(Bucket=version.bucket, Key=version.key, IfMatch=_quoted(version.etag))
    except ClientError as error:
        if _code(error) in _PRECONDITION_FAILED | _NOT_FOUND:
            return False
        raise
    return True


_CHUNK = 1 << 20


class Downloaded(bytes):
    """An object's bytes with their SHA-256 (hex), taken chunk by chunk as they arrived."""

    sha256: str


def _quoted(etag: str) -> str:
    """An entity tag as HTTP conditions carry it: in double quotes."""
    return f'"{etag}"'


def _object_args(bucket: str, key: str, version: ObjectCreated | ObjectVersion) -> dict[str, str]:
    args = {"Bucket": bucket, "Key": key}
    if version.version_id:
        args["VersionId"] = version.version_id
    return args


def rendition_prefix(image_id: str) -> str:
    """Where every rendition of an image lives in the renditions bucket (all its versions)."""
    return f"{image_id}/"


def rendition_key(version: ObjectVersion, rendition: Rendition, fingerprint: str) -> str:
    """Deterministic: the same object version made with the same settings (``fingerprint``)
    always maps to the same key (reruns overwrite identical bytes); a new version (new ETag) or
    other settings never collide with an older one."""
    name = f"{rendition.name}-{fingerprint}" if fingerprint else rendition.name
    return f"{rendition_prefix(version.id)}{version.etag}/{name}.{rendition.extension}"


MAX_PARALLEL_PUTS = 8


class RenditionsBucket:
    """The renditions bucket, as the renditions half writes to it (``s3``: its client)."""

    def __init__(self, s3: Any, name: str) -> None:
        self._s3 = s3
        self.name = name

    def put(
        self,
        version: ObjectVersion,
        renditions: tuple[Rendition, ...],
        *,
        fingerprints: dict[str, str],
        alternates: tuple[Rendition, ...] = (),
        existing: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write the renditions (and their ``alternates``, the same renditions in extra formats)
        and return the record stored on the media item: name -> details, with the alternates by
        format under ``alternates``.

        The PUTs go out together (a worker's time is mostly waiting for S3, and Lambda bills the
        wait). An object whose key is already recorded in ``existing`` (the item's renditions: same
        version, same settings) is not written again and keeps its record.
        """
        existing = existing or {}
        stored: dict[str, dict[str, Any]] = {}
        writes: list[tuple[Rendition, str]] = []

        def kept(record: Any, key: str) -> bool:
            return isinstance(record, dict) and record.get("key") == key

        for rendition in renditions:
            key = rendition_key(version, rendition, fingerprints.get(rendition.name, ""))
            before = existing.get(rendition.name) or {}
            if kept(before, key) and before.get("bucket") == self.name:
                stored[rendition.name] = {k: v for k, v in before.items() if k != "alternates"}
            else:
                writes.append((rendition, key))
                stored[rendition.name] = {
                    "bucket": self.name,
                    "key": key,
                    "width": rendition.width,
                    "height": rendition.height,
                    "format": rendition.format,
                    "content_type": rendition.content_type,
                    "bytes": rendition.size,
                }
        for alternate in alternates:
            fingerprint = fingerprints.get(f"{alternate.name}.{alternate.format}", "")
            key = rendition_key(version, alternate, fingerprint)
            before = ((existing.get(alternate.name) or {}).get("alternates") or {}).get(
                alternate.format
            )
            if not kept(before, key):
                writes.append((alternate, key))
                before = {
                    "key": key,
                    "content_type": alternate.content_type,
                    "bytes": alternate.size,
                }
            stored[alternate.name].setdefault("alternates", {})[alternate.format] = before

        def write_one(write: tuple[Rendition, str]) -> None:
            rendition, key = write
            self._s3.put_object(
                Bucket=self.name,
                Key=key,
                Body=rendition.data,
                ContentType=rendition.content_type,
                CacheControl="public, max-age=31536000, immutable",
                Metadata={"image-id": version.id, "source-etag": version.etag},
            )

        if len(writes) > 1:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - workers only

            with ThreadPoolExecutor(max_workers=min(len(writes), MAX_PARALLEL_PUTS)) as pool:
                list(pool.map(write_one, writes))  # the first failure is raised here
        else:
            for write in writes:
                write_one(write)
        return stored

    def delete(self, renditions: dict[str, dict[str, Any]], *, keep: Any = None) -> None:
        """Delete the objects a renditions record names, except those the record ``keep`` names
        (the item's own, which must stay)."""
        keys = sorted(set(rendition_keys(renditions)) - set(rendition_keys(keep)))
        if keys:
            self._s3.delete_objects(
                Bucket=self.name, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
