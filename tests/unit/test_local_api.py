"""Plain logic of the local API Gateway and of S3's presigned POST policy checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from devstack.gateway import Resource, RestApi, compile_path, user_request
from devstack.moto_patches import post_policy_violation
from devstack.stack import served_locally

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
KEY = "uploads/abcdefghijklmnopqrstuvwxyz/cat.jpg"


def form(expires: datetime = NOW + timedelta(minutes=15), **fields: str) -> dict[str, str]:
    policy = {
        "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [
            {"Content-Type": "image/jpeg"},
            ["content-length-range", 1, 100],
            {"bucket": "uploads"},
            {"key": KEY},
            {"x-amz-date": "20260101T120000Z"},
        ],
    }
    return {
        "key": KEY,
        "Content-Type": "image/jpeg",
        "x-amz-date": "20260101T120000Z",
        "x-amz-signature": "sig",
        "policy": base64.b64encode(json.dumps(policy).encode()).decode(),
        **fields,
    }


def test_a_post_within_its_policy_passes():
    assert post_policy_violation(form(), 50, "uploads", NOW) is None


@pytest.mark.parametrize(
    ("fields", "size", "bucket", "expected"),
    [
        ({"Content-Type": "image/png"}, 50, "uploads", (403, "AccessDenied", "$Content-Type")),
        ({"key": "uploads/other/cat.jpg"}, 50, "uploads", (403, "AccessDenied", "$key")),
        ({}, 50, "another-bucket", (403, "AccessDenied", "$bucket")),
        ({}, 101, "uploads", (400, "EntityTooLarge", "maximum")),
        ({}, 0, "uploads", (400, "EntityTooSmall", "minimum")),
        ({"acl": "public-read"}, 50, "uploads", (403, "AccessDenied", "Extra input fields: acl")),
        ({"policy": "not base64!"}, 50, "uploads", (403, "AccessDenied", "could not be parsed")),
    ],
)
def test_a_post_outside_its_policy_is_refused_like_s3(fields, size, bucket, expected):
    status, code, message = post_policy_violation(form(**fields), size, bucket, NOW)
    assert (status, code) == expected[:2]
    assert expected[2] in message


def test_an_expired_policy_is_refused():
    problem = post_policy_violation(form(expires=NOW - timedelta(seconds=1)), 50, "uploads", NOW)
    assert problem == (403, "AccessDenied", "Invalid according to Policy: Policy expired.")


def test_field_names_match_case_insensitively_and_x_ignore_fields_need_no_condition():
    fields = form()
    fields["content-type"] = fields.pop("Content-Type")
    fields["x-ignore-note"] = "anything"
    assert post_policy_violation(fields, 50, "uploads", NOW) is None


def resource(path: str, *methods: str) -> Resource:
    pattern, params, specificity = compile_path(path)
    return Resource(path, pattern, params, dict.fromkeys(methods), specificity)  # type: ignore[arg-type]


def test_routes_match_the_most_specific_resource_and_decode_path_parameters():
    api = RestApi(id="a")
    api.resources = sorted(
        [
            resource("/", "GET"),
            resource("/{proxy+}", "ANY"),
            resource("/images/{id}", "ANY"),
            resource("/images/latest", "GET"),
        ],
        key=lambda r: r.specificity,
        reverse=True,
    )
    assert api.route("/images/latest")[0].path == "/images/latest"
    found, params = api.route("/images/a%20b")
    assert (found.path, params) == ("/images/{id}", {"id": "a b"})
    assert api.route("/images/x/y")[0].path == "/{proxy+}"
    assert api.route("/images/x/y")[1] == {"proxy": "images/x/y"}
    assert api.route("/")[0].path == "/"


def test_outputs_point_api_url_at_the_local_gateway():
    outputs = {
        "api_url": {"value": "https://abc123.execute-api.us-east-1.amazonaws.com/v1", "type": "s"},
        "api_key": {"value": "k", "sensitive": True},
    }
    local = served_locally(outputs, "https://127.0.0.1:4611")
    assert local["api_url"]["value"] == "https://127.0.0.1:4611/_aws/execute-api/abc123/v1"
    assert local["api_key"] == outputs["api_key"]
    assert served_locally({"region": {"value": "x"}}, "https://e") == {"region": {"value": "x"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/_aws/execute-api/abc123/v1/images/x", ("abc123", "v1", "/images/x")),
        ("/_aws/execute-api/abc123/v1", ("abc123", "v1", "/")),
        ("/restapis/abc123/v1/_user_request_/images/x", ("abc123", "v1", "/images/x")),
        ("/restapis/abc123/v1/_user_request_", ("abc123", "v1", "/")),
        ("/abc123/v1/images/x", None),
        ("/_aws/execute-api/abc123", None),
    ],
)
def test_the_gateway_serves_localstacks_url_shape_and_its_deprecated_one(path, expected):
    assert user_request(path) == expected
