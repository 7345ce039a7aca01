"""docs/openapi.yaml, the handler and terraform/modules/pipeline/api.tf describe the same API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from media_pipeline import routes
from media_pipeline.config.api import ApiSettings
from media_pipeline.model import Status
from media_pipeline.uploads import (
    ALLOWED_TYPES,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    LIST_PARAMETERS,
    MAX_FILENAME_CHARS,
    REQUEST_FIELDS,
    ApiError,
    parse_upload_request,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


def test_the_document_lists_the_routes_terraform_creates():
    terraform = (ROOT / "terraform" / "modules" / "pipeline" / "api.tf").read_text()
    path_parts = re.findall(r'path_part\s*=\s*"([^"]+)"', terraform)
    assert path_parts == ["uploads", "images", "{id}"]
    assert set(SPEC["paths"]) == {"/uploads", "/images", "/images/{id}"}
    assert set(SPEC["paths"]["/uploads"]) == {"post"}
    assert set(SPEC["paths"]["/images"]) == {"get"}
    assert set(SPEC["paths"]["/images/{id}"]) == {"get", "delete"}
    routes = re.search(r"api_routes = \{(.*?)\}", terraform, re.S).group(1)
    assert set(re.findall(r"(\w+)\s*=\s*aws_api_gateway_resource", routes)) == {
        "uploads",
        "images",
        "image",
    }


def test_the_list_parameters_are_what_the_handler_accepts():
    parameters = SPEC["paths"]["/images"]["get"]["parameters"]
    assert tuple(p["name"] for p in parameters) == LIST_PARAMETERS
    by_name = {p["name"]: p["schema"] for p in parameters}
    assert by_name["status"]["enum"] == list(Status)
    assert (by_name["limit"]["maximum"], by_name["limit"]["default"]) == (
        LIST_LIMIT_MAX,
        LIST_LIMIT_DEFAULT,
    )


def test_the_request_schema_is_what_the_handler_accepts():
    request = SCHEMAS["UploadRequest"]
    assert tuple(request["required"]) == REQUEST_FIELDS
    assert request["additionalProperties"] is False
    assert request["properties"]["content_type"]["enum"] == list(ALLOWED_TYPES)
    assert request["properties"]["filename"]["maxLength"] == MAX_FILENAME_CHARS


def test_the_size_limit_is_the_deployments_so_the_schema_has_none_and_a_413_says_it():
    # max_upload_bytes is a Terraform variable (1 KiB to 1 GiB): a schema maximum would be
    # wrong for every deployment but the default one.
    size = SCHEMAS["UploadRequest"]["properties"]["size"]
    assert "maximum" not in size
    assert "413" in size["description"]
    assert "max_bytes" in SCHEMAS["Error"]["properties"]
    responses = SPEC["paths"]["/uploads"]["post"]["responses"]
    assert "max_bytes" in responses["413"]["description"]
    too_large = parse_error({"filename": "a.png", "content_type": "image/png", "size": 11}, 10)
    assert (too_large.status, too_large.body()["max_bytes"]) == (413, 10)


def parse_error(body: dict, max_bytes: int = ApiSettings.max_upload_bytes) -> ApiError | None:
    try:
        parse_upload_request(body, max_bytes)
    except ApiError as error:
        return error
    return None


def test_the_cursor_is_documented_non_empty():
    (cursor,) = (p for p in SPEC["paths"]["/images"]["get"]["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["minLength"] == 1


def ecma(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern as ECMA-262 reads it: ``$`` is the very end (in Python it also
    matches before a final newline)."""
    assert pattern.startswith("^")
    assert pattern.endswith("$")
    assert "$" not in pattern[:-1]
    return re.compile(pattern[:-1] + r"\Z")


def test_the_documented_filename_pattern_accepts_exactly_the_names_the_code_does():
    pattern = ecma(SCHEMAS["UploadRequest"]["properties"]["filename"]["pattern"])
    code_points = [*range(0x3100), 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF]
    for code_point in code_points:
        if 0xD800 <= code_point <= 0xDFFF:
            continue  # lone surrogates: not Unicode text, which JSON Schema cannot say
        c = chr(code_point)
        for name in (c, f"a{c}b", f"a{c}", f"{c}a", f"{c}{c}", f" {c} "):
            error = parse_error({"filename": name, "content_type": "image/png", "size": 1})
            assert (pattern.search(name) is None) == (error is not None), (hex(code_point), name)


def test_every_error_code_the_code_can_answer_is_documented():
    source = "".join(
        (ROOT / "lambdas" / "media_pipeline" / name).read_text()
        for name in ("uploads.py", "handlers/api.py")
    )
    codes = set(re.findall(r'(?:ApiError|_error)\(\s*\d+,\s*"(\w+)"', source))
    assert codes
    assert codes == set(SCHEMAS["Error"]["properties"]["code"]["enum"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/uploads", ("/uploads", {})),
        ("/images", ("/images", {})),
        ("/images/abc", ("/images/{id}", {"id": "abc"})),
        ("/images/%0A", ("/images/{id}", {"id": "\n"})),
        ("/images/x%0A", ("/images/{id}", {"id": "x\n"})),
        ("/images/\n", ("/images/{id}", {"id": "\n"})),
        ("/images/%2F", ("/images/{id}", {"id": "/"})),
        ("/images/", None),
        ("/images//", None),
        ("/images/a/b", None),
        ("/images/abc/", None),
        ("/images\n", None),
        ("/uploads/", None),
        ("/uploads\n", None),
        ("/images/x\n", ("/images/{id}", {"id": "x\n"})),
    ],
)
def test_a_path_is_on_a_route_exactly_or_not_at_all(path, expected):
    # `$` also matches before a final newline; a parameter is one whole, non-empty segment.
    assert routes.route(path) == expected
