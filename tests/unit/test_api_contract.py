"""docs/openapi.yaml, the handler and terraform/modules/pipeline/api.tf describe the same API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from media_pipeline import routes
from media_pipeline.api_requests import (
    ALLOWED_TYPES,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    LIST_PARAMETERS,
    MAX_FILENAME_CHARS,
    REQUEST_FIELDS,
    ApiError,
    parse_upload_request,
)
from media_pipeline.config.api import ApiSettings
from media_pipeline.model import Status

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


TERRAFORM = (ROOT / "terraform" / "modules" / "pipeline" / "api.tf").read_text()
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def terraform_blocks(kind: str) -> dict[str, str]:
    """The bodies of the module's ``resource "<kind>" "<name>"`` blocks, by name."""
    found = re.findall(rf'^resource "{kind}" "(\w+)" {{\n(.*?)^}}', TERRAFORM, re.M | re.S)
    return dict(found)


def terraform_paths() -> dict[str, str]:
    """Each API Gateway resource of the module, by name: its whole path, parent by parent."""
    blocks = terraform_blocks("aws_api_gateway_resource")

    def path(name: str) -> str:
        body = blocks[name]
        part = re.search(r'path_part\s*=\s*"([^"]+)"', body).group(1)
        parent = re.search(r"parent_id\s*=\s*(\S+)", body).group(1)
        if parent == "aws_api_gateway_rest_api.api.root_resource_id":
            return f"/{part}"
        parent_name = re.fullmatch(r"aws_api_gateway_resource\.(\w+)\.id", parent).group(1)
        return f"{path(parent_name)}/{part}"

    return {name: path(name) for name in blocks}


def test_the_document_the_handler_and_terraform_have_the_same_routes_and_methods():
    # The one list of routes the handler serves (the 405s come from it too) ...
    documented = {
        path: tuple(method.upper() for method in operations if method in METHODS)
        for path, operations in SPEC["paths"].items()
    }
    assert documented == routes.ROUTES
    # ... each path parameter is the route's, and declared by each of its operations ...
    for path, operations in SPEC["paths"].items():
        for method in routes.ROUTES[path]:
            declared = {p["name"] for p in operations[method.lower()].get("parameters", [])}
            assert set(re.findall(r"{(\w+)}", path)) <= declared, (method, path)
    # ... and API Gateway has exactly those resources, each going to the function with ANY
    # (the function answers the 405s) behind the API key, and a keyless OPTIONS for CORS.
    paths = terraform_paths()
    assert set(paths.values()) == set(routes.ROUTES)
    api_routes = re.search(r"api_routes = \{(.*?)\}", TERRAFORM, re.S).group(1)
    assert dict(re.findall(r"(\w+)\s*=\s*aws_api_gateway_resource\.(\w+)\.id", api_routes)) == {
        name: name for name in paths
    }
    methods = terraform_blocks("aws_api_gateway_method")
    assert set(methods) == {"route", "preflight"}
    for name, (http_method, key_required) in {
        "route": ("ANY", "true"),
        "preflight": ("OPTIONS", "false"),
    }.items():
        assert "for_each = local.api_routes" in methods[name]
        assert f'http_method      = "{http_method}"' in methods[name]
        assert f"api_key_required = {key_required}" in methods[name]
    # A new deployment whenever a resource changes: the trigger names every one.
    trigger = terraform_blocks("aws_api_gateway_deployment")["api"]
    assert set(re.findall(r"aws_api_gateway_resource\.(\w+)", trigger)) == set(paths)


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
        for name in ("api_requests.py", "uploads.py", "handlers/api.py")
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
