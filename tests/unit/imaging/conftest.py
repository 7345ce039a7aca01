"""Fixtures of the image-engine tests: the shared corpus (../shared/corpus beside the checkout,
as in CI) and engine results cached so each corpus file is rendered once per session.

A test taking ``manifest_row`` runs once per manifest row; ``render_row`` once per row the
manifest expects to render. Without the corpus they are skipped, saying where it was looked for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from media_pipeline import imaging

from tests.support import CORPUS_MISSING, manifest
from tests.unit.imaging.imaging_support import encoded, photo_like


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, rows in (
        ("manifest_row", manifest()),
        ("render_row", tuple(row for row in manifest() if row.reason is None)),
    ):
        if name in metafunc.fixturenames:
            params = [pytest.param(row, id=row.file) for row in rows]
            metafunc.parametrize(
                name, params or [pytest.param(None, marks=pytest.mark.skip(reason=CORPUS_MISSING))]
            )


@pytest.fixture(scope="session")
def corpus_dir(corpus: Path) -> Path:
    return corpus


@pytest.fixture(scope="session")
def corpus_bytes(corpus_dir: Path) -> Callable[[str], bytes]:
    """Bytes of a corpus file by its manifest name, e.g. ``corpus_bytes("pillow/flower.jpg")``."""
    return functools.cache(lambda name: (corpus_dir / name).read_bytes())


@pytest.fixture(scope="session")
def rendered(corpus_bytes: Callable[[str], bytes]) -> Callable[[str], imaging.Produced]:
    """``render()`` of a corpus file with the default specs, computed once per session."""
    return functools.cache(lambda name: imaging.render(corpus_bytes(name)))


@pytest.fixture(scope="session")
def rendered_ok(rendered: Callable[[str], imaging.Produced]) -> Callable[[str], imaging.Rendered]:
    """Like ``rendered``, for a file that must render."""

    def get(name: str) -> imaging.Rendered:
        outcome = rendered(name)
        assert isinstance(outcome, imaging.Rendered), f"{name}: {outcome}"
        return outcome

    return get


@pytest.fixture(scope="session")
def photo_12mp_jpeg() -> bytes:
    """A generated 12 MP (4000x3000) photo-like JPEG, q90; the same bytes on every machine."""
    return encoded(photo_like(4000, 3000, seed=12), "JPEG", quality=90)
