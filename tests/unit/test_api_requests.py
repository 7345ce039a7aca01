"""What PATCH /images/{id} accepts is what the renditions worker can build: the API checks a
framing without the imaging package (its zip has no Pillow), so both are held to the same
values here."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_pipeline.api_requests import ApiError, parse_framing
from media_pipeline.imaging import CropBox, Focus

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-2, max_value=2),
    st.sampled_from([0, 1, 0.0, 1.0, True, False, None, "0.5"]),
)


def _built(kind, values) -> bool:
    try:
        kind(*values)
    except (ValueError, TypeError):
        return False
    return True


def _accepted(body) -> dict | None:
    try:
        return parse_framing(body)
    except ApiError as error:
        if error.status != 400:
            raise
        return None


@given(x=numbers, y=numbers)
def test_a_focus_passes_exactly_when_the_worker_can_build_it(x, y) -> None:
    framing = _accepted({"focus": {"x": x, "y": y}})
    assert (framing is not None) == _built(Focus, (x, y))
    if framing is not None:
        assert Focus(**framing["focus"]) == (x, y, "given")


@given(edges=st.lists(numbers, min_size=4, max_size=4))
def test_a_crop_box_passes_exactly_when_the_worker_can_build_it(edges) -> None:
    framing = _accepted(
        {"crop_box": dict(zip(("left", "top", "right", "bottom"), edges, strict=True))}
    )
    assert (framing is not None) == _built(CropBox, edges)
    if framing is not None:
        box = CropBox(**framing["crop_box"])
        assert all(math.isclose(a, b) for a, b in zip(box, edges, strict=True))


@pytest.mark.parametrize(
    "body", [{"focus": None}, {"crop_box": None}, {"focus": None, "crop_box": None}]
)
def test_null_is_automatic(body) -> None:
    assert parse_framing(body) == {}
