"""Image settings of the renditions and metadata workers, also read by ``scripts/render.py``,
``scripts/reprocess.py`` and ``scripts/load.py``: sizes, encoding, limits, GPS.

Plain functions, no settings class: ``scripts/render.py`` starts with these alone, without
``workers``' settings dataclasses (~4 ms of its start-up, which ``make bench`` compares with a
bare Pillow script). ``workers`` builds its settings from them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from media_pipeline.config.env import ConfigError, integer
from media_pipeline.imaging import (
    DEFAULT_RENDITIONS,
    EncodeOptions,
    Limits,
    RenditionSpec,
)


def parse_renditions(raw: str) -> tuple[RenditionSpec, ...]:
    """Parse ``RENDITIONS`` into rendition specs, largest first. Entries, comma-separated:

    * ``name:pixels`` -- the whole picture, longest edge ``pixels`` (``large:1024``);
    * ``name:pixels:WxH`` -- a cropped rendition of aspect ratio W:H, longest edge ``pixels``
      (``square:256:1x1``, ``card:640:16x9``, ``story:1080:9x16``), placed around the picture's
      point of interest (``imaging.crops``);
    * ``name:pixels:WxH:upscale`` -- the same, enlarged when the picture is smaller than that, so
      it always comes out at exactly its size.

    ``large:1024,medium:512,small:128`` (the entries before cropped renditions existed) reads as
    it always did.
    """
    specs: list[RenditionSpec] = []
    for part in raw.split(","):
        entry = part.strip()
        fields = [field.strip() for field in entry.split(":")]
        name, edge = ([*fields, "", ""])[:2]
        if not name or not edge.isdigit() or int(edge) < 1 or len(fields) > 4:
            raise ConfigError(
                f"RENDITIONS entry {entry!r} is not of the form name:pixels or name:pixels:WxH"
                " (optionally :upscale)"
            )
        aspect = None
        if len(fields) >= 3:
            aspect = _aspect(entry, fields[2])
        upscale = len(fields) == 4
        if upscale and fields[3] != "upscale":
            raise ConfigError(f"RENDITIONS entry {entry!r}: the fourth field can only be 'upscale'")
        try:
            specs.append(RenditionSpec(name, int(edge), aspect, upscale))
        except ValueError as error:
            raise ConfigError(f"RENDITIONS entry {entry!r}: {error}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"RENDITIONS has duplicate names: {raw!r}")
    return tuple(sorted(specs, key=lambda s: s.max_edge, reverse=True))


def _aspect(entry: str, raw: str) -> tuple[int, int]:
    width, sep, height = raw.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ConfigError(
            f"RENDITIONS entry {entry!r}: the aspect ratio must be WxH (e.g. 16x9), not {raw!r}"
        )
    return int(width), int(height)


def limits_from_env(env: Mapping[str, str] = os.environ) -> Limits:
    """MAX_UPLOAD_BYTES and MAX_PIXELS (both workers; also scripts/render.py)."""
    default = Limits()
    return Limits(
        max_bytes=integer(env, "MAX_UPLOAD_BYTES", default.max_bytes),
        max_pixels=integer(env, "MAX_PIXELS", default.max_pixels),
    )


def renditions_from_env(env: Mapping[str, str] = os.environ) -> tuple[RenditionSpec, ...]:
    """RENDITIONS (renditions worker; also scripts/render.py); the defaults when unset."""
    raw = env.get("RENDITIONS", "").strip()
    return parse_renditions(raw) if raw else DEFAULT_RENDITIONS


def encode_options_from_env(env: Mapping[str, str] = os.environ) -> EncodeOptions:
    """JPEG_QUALITY, WEBP_QUALITY, AVIF_QUALITY, OPAQUE_FORMAT (JPEG, WEBP or AVIF),
    ALPHA_FORMAT (WEBP, PNG or AVIF) and EXTRA_FORMATS (e.g. ``AVIF,WEBP``; empty: none)
    (renditions worker; also scripts/render.py)."""
    default = EncodeOptions()
    extra = env.get("EXTRA_FORMATS", "")
    try:
        return EncodeOptions(
            jpeg_quality=integer(env, "JPEG_QUALITY", default.jpeg_quality),
            webp_quality=integer(env, "WEBP_QUALITY", default.webp_quality),
            avif_quality=integer(env, "AVIF_QUALITY", default.avif_quality),
            opaque_format=env.get("OPAQUE_FORMAT", "").strip().upper() or default.opaque_format,
            alpha_format=env.get("ALPHA_FORMAT", "").strip().upper() or default.alpha_format,
            extra_formats=tuple(f.strip().upper() for f in extra.split(",") if f.strip()),
        )
    except ValueError as error:
        raise ConfigError(f"environment: {error}") from None


def include_gps_from_env(env: Mapping[str, str] = os.environ) -> bool:
    """INCLUDE_GPS: "true" or "false" (the default)."""
    raw = env.get("INCLUDE_GPS", "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigError(f"environment variable INCLUDE_GPS={raw!r} must be true or false")
    return raw == "true"
