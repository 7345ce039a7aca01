"""Settings of the upload API function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from media_pipeline.config.env import ConfigError, integer, required
from media_pipeline.model import DELETED_RETENTION_SECONDS

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    media_table: str
    uploads_bucket: str
    upload_prefix: str
    renditions_bucket: str
    max_upload_bytes: int = 25 * MIB
    upload_expiry_seconds: int = 15 * 60  # life of a presigned POST
    download_expiry_seconds: int = 15 * 60  # life of a rendition's presigned GET
    pending_ttl_seconds: int = 24 * 3600  # an unused upload request is deleted this long after
    deleted_ttl_seconds: int = DELETED_RETENTION_SECONDS  # a deleted image's item answers 404
    cors_origins: tuple[str, ...] = ()
    # Where PATCH /images/{id} sends the image's renditions job (the thumbnail queue); empty:
    # PATCH answers 501 (a deployment without the renditions worker's queue).
    renditions_queue_url: str = ""
    duplicates_table: str = ""  # GET /images?duplicate_of= and a delete's clean-up (unset: none)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ApiSettings:
        prefix = required(env, "UPLOAD_PREFIX")
        if not prefix.endswith("/"):
            raise ConfigError(f"environment variable UPLOAD_PREFIX={prefix!r} must end in '/'")
        origins = tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
        return cls(
            media_table=required(env, "MEDIA_TABLE"),
            uploads_bucket=required(env, "UPLOADS_BUCKET"),
            upload_prefix=prefix,
            renditions_bucket=required(env, "RENDITIONS_BUCKET"),
            max_upload_bytes=integer(env, "MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            upload_expiry_seconds=integer(
                env, "UPLOAD_EXPIRY_SECONDS", cls.upload_expiry_seconds, minimum=10
            ),
            download_expiry_seconds=integer(
                env, "DOWNLOAD_EXPIRY_SECONDS", cls.download_expiry_seconds, minimum=10
            ),
            pending_ttl_seconds=integer(env, "PENDING_TTL_SECONDS", cls.pending_ttl_seconds),
            deleted_ttl_seconds=integer(env, "DELETED_TTL_SECONDS", cls.deleted_ttl_seconds),
            cors_origins=origins,
            renditions_queue_url=env.get("THUMBNAIL_QUEUE_URL", ""),
            duplicates_table=env.get("DUPLICATES_TABLE", "").strip(),
        )
