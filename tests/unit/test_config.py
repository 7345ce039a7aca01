"""Each function's settings come from its environment, with precise errors."""

from __future__ import annotations

import pytest
from media_pipeline.config.api import ApiSettings
from media_pipeline.config.env import ConfigError
from media_pipeline.config.notifier import NotifierSettings
from media_pipeline.config.workers import MetadataSettings, RenditionsSettings, parse_renditions
from media_pipeline.duplicates_index import Policy
from media_pipeline.imaging import DEFAULT_RENDITIONS, RenditionSpec
from media_pipeline.model import DELETED_RETENTION_SECONDS
from tooling import terraform_config

WORKER_ENV = {"MEDIA_TABLE": "media"}


def test_renditions_settings_with_defaults():
    settings = RenditionsSettings.from_env({**WORKER_ENV, "RENDITIONS_BUCKET": "r"})
    assert settings.renditions == DEFAULT_RENDITIONS
    assert settings.max_receive_count == 5
    assert settings.limits.max_pixels == 50_000_000


def test_renditions_settings_read_everything():
    settings = RenditionsSettings.from_env(
        {
            **WORKER_ENV,
            "RENDITIONS_BUCKET": "r",
            "RENDITIONS": "small:128, large:2048",
            "MAX_UPLOAD_BYTES": "1000",
            "MAX_PIXELS": "2000",
            "JPEG_QUALITY": "90",
            "MAX_RECEIVE_COUNT": "3",
        }
    )
    assert settings.renditions == (RenditionSpec("large", 2048), RenditionSpec("small", 128))
    assert (settings.limits.max_bytes, settings.limits.max_pixels) == (1000, 2000)
    assert settings.encode.jpeg_quality == 90
    assert settings.max_receive_count == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MEDIA_TABLE"),
        ({**WORKER_ENV}, "RENDITIONS_BUCKET"),
        (
            {**WORKER_ENV, "RENDITIONS_BUCKET": "r", "MAX_PIXELS": "lots"},
            "MAX_PIXELS='lots' is not an integer",
        ),
        ({**WORKER_ENV, "RENDITIONS_BUCKET": "r", "MAX_RECEIVE_COUNT": "0"}, "must be >= 1"),
        ({**WORKER_ENV, "RENDITIONS_BUCKET": "r", "RENDITIONS": "big"}, "name:pixels"),
    ],
)
def test_missing_or_malformed_variables_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        RenditionsSettings.from_env(env)


def test_duplicate_rendition_names_are_refused():
    with pytest.raises(ConfigError, match="duplicate"):
        parse_renditions("a:10,a:20")


def test_metadata_and_notifier_settings():
    assert MetadataSettings.from_env(WORKER_ENV).media_table == "media"
    assert (
        NotifierSettings.from_env({"EVENTS_TOPIC_ARN": "arn:t", "IDEMPOTENCY_TABLE": "i"}).topic_arn
        == "arn:t"
    )
    with pytest.raises(ConfigError, match="EVENTS_TOPIC_ARN"):
        NotifierSettings.from_env({})


def test_metadata_settings_record_gps_only_when_told():
    assert MetadataSettings.from_env(WORKER_ENV).include_gps is False
    assert MetadataSettings.from_env({**WORKER_ENV, "INCLUDE_GPS": "True"}).include_gps is True
    with pytest.raises(ConfigError, match="INCLUDE_GPS"):
        MetadataSettings.from_env({**WORKER_ENV, "INCLUDE_GPS": "yes please"})


def test_rendition_formats_come_from_the_environment():
    env = {**WORKER_ENV, "RENDITIONS_BUCKET": "r"}
    settings = RenditionsSettings.from_env({**env, "OPAQUE_FORMAT": "avif", "ALPHA_FORMAT": "PNG"})
    assert (settings.encode.opaque_format, settings.encode.alpha_format) == ("AVIF", "PNG")
    assert RenditionsSettings.from_env(env).encode.opaque_format == "JPEG"
    with pytest.raises(ConfigError, match="opaque_format"):
        RenditionsSettings.from_env({**env, "OPAQUE_FORMAT": "GIF"})


def test_renditions_may_be_cropped_to_an_aspect_ratio() -> None:
    specs = parse_renditions("large:1024, square:256:1x1, card:640:16X9, avatar:96:1x1:upscale")
    assert specs == (
        RenditionSpec("large", 1024),
        RenditionSpec("card", 640, (16, 9)),
        RenditionSpec("square", 256, (1, 1)),
        RenditionSpec("avatar", 96, (1, 1), upscale=True),
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("card:640:16", "WxH"),
        ("card:640:16x0", "aspect must be two whole numbers"),
        ("card:640:axb", "WxH"),
        ("card:640:16x9:bigger", "can only be 'upscale'"),
        ("card:640:16x9:upscale:more", "name:pixels"),
        ("card:640:upscale", "WxH"),
        ("card::16x9", "name:pixels"),
    ],
)
def test_malformed_cropped_renditions_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_renditions(raw)


def test_a_deleted_image_is_kept_as_long_as_terraform_says_by_default():
    # One fact: model.DELETED_RETENTION_SECONDS is the default of deleted_retention_days, which
    # every deployment passes to the functions as DELETED_TTL_SECONDS.
    pipeline = terraform_config.load(terraform_config.MODULES_DIR / "pipeline")
    days = pipeline.variable("deleted_retention_days").default
    assert days * 24 * 3600 == DELETED_RETENTION_SECONDS
    assert ApiSettings.deleted_ttl_seconds == DELETED_RETENTION_SECONDS
    assert RenditionsSettings.deleted_ttl_seconds == DELETED_RETENTION_SECONDS


def test_duplicates_are_recorded_by_default_as_terraform_says_and_the_policy_is_checked():
    pipeline = terraform_config.load(terraform_config.MODULES_DIR / "pipeline")
    assert pipeline.variable("duplicates").default == Policy.RECORD.value
    base = {**WORKER_ENV, "RENDITIONS_BUCKET": "r"}
    settings = RenditionsSettings.from_env(base)
    assert (settings.duplicates_table, settings.duplicates_policy) == ("", Policy.RECORD)
    settings = RenditionsSettings.from_env(
        {**base, "DUPLICATES_TABLE": "d", "DUPLICATES_POLICY": "reject"}
    )
    assert (settings.duplicates_table, settings.duplicates_policy) == ("d", Policy.REJECT)
    with pytest.raises(ConfigError, match="DUPLICATES_POLICY='drop' must be one of record"):
        RenditionsSettings.from_env({**base, "DUPLICATES_POLICY": "drop"})
