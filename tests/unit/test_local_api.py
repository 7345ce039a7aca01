"""Plain logic of the local API Gateway and of S3's presigned POST policy checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from devstack.gateway import LocalGateway, Method, Resource, RestApi, compile_path, user_request
from devstack.moto_patches import post_policy_violation
from devstack.sandbox import Result
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
    found, params = api.route("/images/a b\n")  # the path arrives percent-decoded
    assert (found.path, params) == ("/images/{id}", {"id": "a b\n"})
    assert api.route("/images/x/y")[0].path == "/{proxy+}"
    assert api.route("/images/x/y")[1] == {"proxy": "images/x/y"}
    assert api.route("/")[0].path == "/"
    assert api.route("/images/a\nb/c")[1] == {"proxy": "images/a\nb/c"}


def local_gateway(*resources: Resource) -> tuple[LocalGateway, list[dict]]:
    """A gateway serving one API (id ``a``, stage ``v1``, key ``k``) whose function records the
    events it gets and answers 200."""
    events: list[dict] = []

    def invoke(function: str, payload: bytes, source: str) -> Result:
        events.append(json.loads(payload))
        return Result(request_id="r", payload=json.dumps({"statusCode": 200}).encode())

    gateway = LocalGateway(client=None, invoke=invoke)
    api = RestApi(id="a", stages={"v1"}, keys={"v1": {"k"}})
    api.resources = sorted(resources, key=lambda r: r.specificity, reverse=True)
    gateway._apis = {"a": api}
    return gateway, events


def proxied(*paths: str) -> list[Resource]:
    method = Method(True, "NONE", "AWS_PROXY", "arn:aws:lambda:us-east-1:1:function:api")
    found = []
    for path in paths:
        pattern, params, specificity = compile_path(path)
        found.append(Resource(path, pattern, params, {"ANY": method}, specificity))
    return found


def call(gateway: LocalGateway, raw_path: str, key: str = "k") -> tuple[str, dict]:
    answered = {}

    def start_response(status, headers):
        answered["status"] = status

    environ = {"RAW_URI": f"/_aws/execute-api/a/v1{raw_path}", "REQUEST_METHOD": "GET"}
    environ |= {"HTTP_X_API_KEY": key} if key else {}
    body = b"".join(gateway(environ, start_response, b""))
    return answered["status"], json.loads(body) if body else {}


@pytest.mark.parametrize(
    ("raw_path", "resource", "path_parameters"),
    [
        ("/images/x%0A", "/images/{id}", {"id": "x\n"}),
        ("/images/%0A", "/images/{id}", {"id": "\n"}),
        ("/images/a%20b", "/images/{id}", {"id": "a b"}),
        ("/images/%25", "/images/{id}", {"id": "%"}),
        ("/images", "/images", None),
        ("/images/", "/images", None),  # a trailing slash: the resource without it, as on AWS
    ],
)
def test_the_function_gets_the_path_as_sent_and_its_parameters_decoded(
    raw_path, resource, path_parameters
):
    gateway, events = local_gateway(*proxied("/images", "/images/{id}"))

    assert call(gateway, raw_path)[0] == "200 OK"
    (event,) = events
    assert (event["resource"], event["path"]) == (resource, raw_path)
    assert event["pathParameters"] == path_parameters


@pytest.mark.parametrize("raw_path", ["/images/%2F", "/images//", "/images/a%2Fb", "/images/a/b"])
def test_a_parameter_never_holds_a_slash_or_nothing(raw_path):
    # An encoded slash is a slash: API Gateway routes on the decoded path.
    gateway, events = local_gateway(*proxied("/images", "/images/{id}"))

    assert call(gateway, raw_path) == ("403 Forbidden", {"message": "Missing Authentication Token"})
    assert events == []


@pytest.mark.parametrize("key", ["", "not-the-key"])
def test_a_route_needing_a_key_is_forbidden_without_it(key):
    gateway, events = local_gateway(*proxied("/images/{id}"))

    assert call(gateway, "/images/x", key=key) == ("403 Forbidden", {"message": "Forbidden"})
    assert events == []


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
