"""The upload API handler against moto (in process): the contract of every route and status code,
the presigned POST it hands out, and the item the workers then complete."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from media_pipeline.config.env import ConfigError
from media_pipeline.model import is_media_id, media_id
from media_pipeline.routes import ROUTES

from tests.integration.conftest import MAX_BYTES, MEDIA_TABLE, ORIGIN, UPLOADS
from tests.support import s3_event, sqs_record

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTO = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()


def request(
    api,
    lambda_context,
    method,
    path,
    body=None,
    *,
    headers=None,
    raw=None,
    query=None,
    key="k1",
    resource=None,
    path_parameters=None,
):
    """Invoke the handler with an API Gateway REST (v1) Lambda proxy event (``key``: the id of
    the API key it came with; ``resource`` and ``path_parameters``: what API Gateway matched,
    by default the route the path looks like and its last segment)."""
    if resource is None:
        resource = "/images/{id}" if path.startswith("/images/") else path
    if path_parameters is None and resource != path:
        path_parameters = {"id": path.rsplit("/", 1)[-1]}
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "r-1",
            "identity": {"apiKey": "k", "apiKeyId": key, "sourceIp": "127.0.0.1"},
        },
        "body": raw if raw is not None else (None if body is None else json.dumps(body)),
        "isBase64Encoded": False,
    }
    response = api.lambda_handler(event, lambda_context)
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(values)
    payload = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], headers, payload


def valid(**overrides):
    return {"filename": "cat.jpg", "content_type": "image/jpeg", "size": 1234, **overrides}


def test_post_uploads_creates_an_awaiting_item_and_a_presigned_post_pinned_to_it(
    aws, api, lambda_context
):
    status, headers, body = request(api, lambda_context, "POST", "/uploads", valid())

    assert status == 201
    image_id = body["image_id"]
    assert is_media_id(image_id)
    assert headers["location"] == f"/images/{image_id}"
    assert body["max_bytes"] == MAX_BYTES
    fields = body["upload"]["fields"]
    assert fields["key"] == f"uploads/{image_id}/cat.jpg"
    assert media_id(UPLOADS, fields["key"]) == image_id  # the workers land on this item
    assert fields["Content-Type"] == "image/jpeg"

    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": UPLOADS} in conditions
    assert {"key": fields["key"]} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1234, 1234] in conditions  # the declared size
    expiration = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 590 <= expiration - time.mktime(time.gmtime()) <= 610

    item = aws.media_item(image_id)
    assert item["status"] == "AWAITING_UPLOAD"
    assert item["key"] == fields["key"]
    assert item["declared_size"] == 1234
    assert item["expires_at"] > time.time() + 600  # the TTL outlives the presigned POST
    assert body["expires_at"] == item["upload_expires_at"]


def policy_of(body: dict) -> dict:
    """The policy document of a presigned POST, decoded from the fields handed out."""
    return json.loads(base64.b64decode(body["upload"]["fields"]["policy"]))


def content_length_ranges(policy: dict) -> list[list]:
    return [
        c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"
    ]


@pytest.mark.parametrize("size", [1, 100, 43_210, MAX_BYTES])
def test_the_presigned_post_admits_exactly_the_declared_size(api, lambda_context, size):
    status, _, body = request(api, lambda_context, "POST", "/uploads", valid(size=size))

    assert status == 201
    assert content_length_ranges(policy_of(body)) == [["content-length-range", size, size]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filename", "\ud800.jpg"),  # a lone high surrogate: valid JSON, not valid Unicode text
        ("filename", "cat\udfff.jpg"),  # a lone low surrogate
        ("content_type", "\ud800"),
        ("content_type", "image/jpeg\udc00"),
        ("filename", "cat\x00.jpg"),  # NUL
        ("filename", "cat\n.jpg"),
        ("filename", "\x1b[31mcat.jpg"),
        ("filename", "cat\x7f.jpg"),  # DEL
        ("filename", "cat\x85.jpg"),  # a C1 control (NEL)
        ("content_type", "image/jpeg\x00"),
        ("content_type", "image/jpeg\r\n"),
    ],
)
def test_a_string_that_cannot_be_stored_or_signed_is_a_400_naming_its_field(
    aws, api, lambda_context, field, value
):
    status, headers, body = request(
        api, lambda_context, "POST", "/uploads", valid(**{field: value})
    )

    assert (status, body["code"], body["field"]) == (400, "invalid_field", field)
    assert headers["content-type"] == "application/json"
    assert body["message"].startswith(f"{field}: ")
    assert body["message"].isascii()  # the offending character is shown escaped
    assert aws.dynamodb.scan(TableName=MEDIA_TABLE)["Count"] == 0


def test_a_lone_surrogate_in_the_raw_json_body_is_a_400_not_a_server_error(
    aws, api, lambda_context
):
    raw = '{"filename": "\\ud800.jpg", "content_type": "image/jpeg", "size": 100}'
    status, _, body = request(api, lambda_context, "POST", "/uploads", raw=raw)

    assert (status, body["code"], body["field"]) == (400, "invalid_field", "filename")
    assert "surrogate" in body["message"]
    assert aws.dynamodb.scan(TableName=MEDIA_TABLE)["Count"] == 0


@pytest.mark.parametrize(
    ("name", "shown"),
    [("\ud800", "'\\ud800'"), ("a\x00b", "'a\\x00b'"), ("x" * 100_000, repr("x" * 64))],
)
def test_an_unknown_field_is_named_printably_and_briefly(api, lambda_context, name, shown):
    status, _, body = request(api, lambda_context, "POST", "/uploads", {**valid(), name: 1})

    assert (status, body["code"], body["field"]) == (400, "invalid_field", shown)
    assert len(body["message"]) < 200


def test_the_longest_file_name_is_stored_as_sent_and_its_key_fits_s3(aws, api, lambda_context):
    filename = "\U0001f600" * 254 + "\u00e9"  # 255 characters, 1018 bytes of UTF-8
    status, _, body = request(api, lambda_context, "POST", "/uploads", valid(filename=filename))

    assert status == 201
    assert aws.media_item(body["image_id"])["filename"] == filename
    assert len(body["upload"]["fields"]["key"].encode()) <= 1024  # S3's limit on keys


def test_an_upload_prefix_too_long_for_s3_keys_fails_the_cold_start(load_handler, monkeypatch):
    monkeypatch.setenv("UPLOADS_BUCKET", UPLOADS)
    monkeypatch.setenv("UPLOAD_PREFIX", "p" * 900 + "/")

    with pytest.raises(ConfigError, match="UPLOAD_PREFIX is too long"):
        load_handler("api")


@pytest.mark.parametrize(
    ("filename", "key_name"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\photos\\Été 2024 (1).JPG", "Ete_2024_1_.JPG"),
        ("..", "image.png"),
        ("ünïcödé/ü.png", "u.png"),
        ("a" * 200 + ".png", "a" * 96 + ".png"),
    ],
)
def test_the_key_carries_a_sanitised_file_name(api, lambda_context, filename, key_name):
    status, _, body = request(
        api, lambda_context, "POST", "/uploads", valid(filename=filename, content_type="image/png")
    )
    assert status == 201
    assert body["upload"]["fields"]["key"] == f"uploads/{body['image_id']}/{key_name}"


@pytest.mark.parametrize(
    "content_type",
    [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/heic",
        "image/heif",
        "image/tiff",
    ],
)
def test_every_allowed_type_is_accepted_and_pinned_exactly(api, lambda_context, content_type):
    status, _, body = request(
        api, lambda_context, "POST", "/uploads", valid(content_type=content_type)
    )
    assert status == 201
    assert body["upload"]["fields"]["Content-Type"] == content_type


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (valid(content_type="application/pdf"), 415, "unsupported_media_type", "content_type"),
        (valid(content_type="image/svg+xml"), 415, "unsupported_media_type", "content_type"),
        (valid(content_type="IMAGE/JPEG"), 415, "unsupported_media_type", "content_type"),
        (valid(content_type="image/jpeg; q=1"), 415, "unsupported_media_type", "content_type"),
        (valid(size=MAX_BYTES + 1), 413, "too_large", "size"),
        (valid(size=0), 400, "invalid_field", "size"),
        (valid(size=-5), 400, "invalid_field", "size"),
        (valid(size=1.5), 400, "invalid_field", "size"),
        (valid(size="12"), 400, "invalid_field", "size"),
        (valid(size=True), 400, "invalid_field", "size"),
        (valid(filename=""), 400, "invalid_field", "filename"),
        (valid(filename=7), 400, "invalid_field", "filename"),
        (valid(filename="x" * 256), 400, "invalid_field", "filename"),
        (valid(content_type=None), 400, "invalid_field", "content_type"),
        (valid(colour="red"), 400, "invalid_field", "colour"),
        ({"content_type": "image/png", "size": 3}, 400, "missing_field", "filename"),
        ({"filename": "a.png", "size": 3}, 400, "missing_field", "content_type"),
        ({"filename": "a.png", "content_type": "image/png"}, 400, "missing_field", "size"),
        ([], 400, "malformed_body", None),
        ("just a string", 400, "malformed_body", None),
    ],
)
def test_bad_upload_requests_get_a_precise_json_error_and_create_nothing(
    aws, api, lambda_context, body, status, code, field
):
    got_status, headers, got = request(api, lambda_context, "POST", "/uploads", body)

    assert (got_status, got["code"], got.get("field")) == (status, code, field)
    assert headers["content-type"] == "application/json"
    if field:
        assert got["message"].startswith(f"{field}:")
    assert aws.dynamodb.scan(TableName=MEDIA_TABLE)["Count"] == 0


@pytest.mark.parametrize("size", [MAX_BYTES + 1, 2**63, 10**400])
def test_a_size_over_the_deployments_limit_is_a_413_that_names_the_limit(api, lambda_context, size):
    # The limit is a deployment setting, not in the OpenAPI schema: the answer tells it.
    raw = json.dumps(valid(size=size))
    status, _, body = request(api, lambda_context, "POST", "/uploads", raw=raw)

    assert (status, body["code"], body["field"]) == (413, "too_large", "size")
    assert body["max_bytes"] == MAX_BYTES


@pytest.mark.parametrize("raw", ["", "{", "not json", "\x00", "[" * 100_000])
def test_a_body_that_is_not_json_is_a_400(api, lambda_context, raw):
    status, _, body = request(api, lambda_context, "POST", "/uploads", raw=raw)
    assert (status, body["code"]) == (400, "malformed_body")


def test_a_base64_encoded_body_is_decoded(api, lambda_context):
    event_body = base64.b64encode(json.dumps(valid()).encode()).decode()
    status, _, _ = request(api, lambda_context, "POST", "/uploads", raw=event_body)
    assert status == 400  # not flagged as base64: it is not JSON
    # flagged, it is accepted (API Gateway base64-encodes binary media types)
    event = {
        "resource": "/uploads",
        "path": "/uploads",
        "httpMethod": "POST",
        "headers": {},
        "requestContext": {"stage": "v1", "requestId": "r"},
        "body": event_body,
        "isBase64Encoded": True,
    }
    assert api.lambda_handler(event, lambda_context)["statusCode"] == 201


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/uploads", "POST"),
        ("PUT", "/uploads", "POST"),
        ("PUT", "/images/abc", "GET, PATCH, DELETE"),
        ("POST", "/images/abc", "GET, PATCH, DELETE"),
        ("POST", "/images", "GET"),
    ],
)
def test_a_wrong_method_on_a_known_route_is_a_405_with_allow(
    api, lambda_context, method, path, allowed
):
    status, headers, body = request(api, lambda_context, method, path, {})
    assert (status, body["code"]) == (405, "method_not_allowed")
    assert headers["allow"].startswith(allowed)


def test_an_unknown_route_is_a_json_404(api, lambda_context):
    status, _, body = request(api, lambda_context, "GET", "/nothing/here")
    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/images/", "/images"),  # API Gateway answers a trailing slash with the resource
        ("/images//", "/images"),
        ("/uploads/", "/uploads"),
        ("/images/abc/", "/images/{id}"),
        ("/images/a/b", "/images/{id}"),
        ("/images\n", "/images"),
        ("/uploads\n", "/uploads"),
    ],
)
def test_a_path_that_is_not_exactly_a_route_is_a_404_whatever_api_gateway_matched(
    api, lambda_context, method, path, resource
):
    # An empty or slash id never falls through to GET /images, and no method is "not allowed"
    # on a path that is no route.
    status, _, body = request(
        api, lambda_context, method, path, {}, resource=resource, path_parameters={}
    )
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"].startswith("no route ")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("path_as", ["sent", "decoded"])
@pytest.mark.parametrize(
    ("segment", "image_id"),
    [("%0A", "\n"), ("x%0A", "x\n"), ("%2F", "/"), ("a%2Fb", "a/b"), ("%20", " "), ("%25", "%")],
)
def test_an_image_id_is_the_one_api_gateway_decoded_whatever_the_path_looks_like(
    api, lambda_context, method, path_as, segment, image_id
):
    # API Gateway hands the function pathParameters percent-decoded; its ``path`` may be the
    # path as sent or decoded. Either way the id is looked up exactly: never a route's fall
    # through, never a 405, never an id with its last character dropped.
    path = "/images/" + (segment if path_as == "sent" else image_id)
    if "/" in path.removeprefix("/images/"):
        path = f"/images/{segment}"  # a decoded slash would be two segments: no such path
    status, _, body = request(api, lambda_context, method, path, path_parameters={"id": image_id})
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"] == f"no image with id {image_id!r}"


def test_an_id_with_a_trailing_newline_is_not_the_image_without_it(api, lambda_context):
    _, _, created = request(api, lambda_context, "POST", "/uploads", valid())
    image_id = created["image_id"]

    for path, decoded in (
        (f"/images/{image_id}%0A", f"{image_id}\n"),
        (f"/images/{image_id}\n",) * 2,
    ):
        for method in ("GET", "DELETE"):
            status, _, body = request(
                api, lambda_context, method, path, path_parameters={"id": decoded}
            )
            assert (status, body["code"]) == (404, "not_found"), (method, path)

    status, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert (status, body["status"]) == (200, "AWAITING_UPLOAD")  # the DELETEs missed it


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("tail", ["%2F", "%2F%2F", "/"])
def test_an_id_api_gateway_normalised_into_an_images_own_does_not_reach_it(
    api, lambda_context, method, tail
):
    # API Gateway routes the decoded path and forgives a trailing slash: /images/<id>%2F comes
    # with pathParameters {id: <id>}, but the id asked for was "<id>/".
    _, _, created = request(api, lambda_context, "POST", "/uploads", valid())
    image_id = created["image_id"]

    status, _, body = request(
        api, lambda_context, method, f"/images/{image_id}{tail}", path_parameters={"id": image_id}
    )
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"].startswith("no route ")
    status, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert (status, body["status"]) == (200, "AWAITING_UPLOAD")


def test_the_handler_serves_exactly_its_routes_and_methods(api, lambda_context):
    # Every method on every route: the route's own methods reach their handler (here: an
    # unknown image, a bad body, an empty list), every other method is a 405 naming them.
    for template, methods in ROUTES.items():
        path = template.replace("{id}", "a" * 26)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            status, headers, body = request(api, lambda_context, method, path, raw="{")
            if method in methods:
                assert status in (200, 400, 404), (method, template, body)
                assert (body or {}).get("code") != "method_not_allowed"
                assert not (body or {}).get("message", "").startswith("no route")
            else:
                assert (status, body["code"]) == (405, "method_not_allowed"), (method, template)
                assert headers["allow"] == ", ".join((*methods, "OPTIONS"))


@pytest.mark.parametrize(
    "image_id", ["a" * 26, "not-an-id", "A" * 26, "x" * 300, "\U000c1ded\x03\n\x8cN\x17"]
)
def test_an_unknown_image_is_a_404(api, lambda_context, image_id):
    status, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert (status, body["code"]) == (404, "not_found")


def test_get_image_while_awaiting_upload_and_after_the_request_expired(aws, api, lambda_context):
    _, _, created = request(api, lambda_context, "POST", "/uploads", valid())
    image_id = created["image_id"]

    status, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert status == 200
    assert body["status"] == "AWAITING_UPLOAD"
    assert body["upload_expired"] is False
    assert body["renditions"] == {}
    assert body["failure"] is None

    aws.dynamodb.update_item(
        TableName=MEDIA_TABLE,
        Key={"id": {"S": image_id}},
        UpdateExpression="SET upload_expires_at = :past",
        ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00Z"}},
    )
    _, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert (body["status"], body["upload_expired"]) == ("AWAITING_UPLOAD", True)


def test_an_upload_through_the_api_ends_ready_with_presigned_rendition_urls(
    aws, api, load_handler, lambda_context
):
    # GIVEN an upload request, and the object uploaded under the key it pinned
    _, _, created = request(api, lambda_context, "POST", "/uploads", valid())
    image_id, key = created["image_id"], created["upload"]["fields"]["key"]
    etag = aws.put_upload(key, PHOTO)

    # WHEN both workers process its S3 event
    event = s3_event(bucket=UPLOADS, key=key, etag=etag, size=len(PHOTO), sequencer="00AB")
    for worker in ("thumbnail", "metadata"):
        handler = load_handler(worker)
        records = {"Records": [sqs_record(event)]}
        assert handler.lambda_handler(records, lambda_context) == {"batchItemFailures": []}

    # THEN the item the API created is READY, with no TTL left, and GET describes it
    item = aws.media_item(image_id)
    assert item["status"] == "READY"
    assert "expires_at" not in item
    assert item["filename"] == "cat.jpg"
    status, _, body = request(api, lambda_context, "GET", f"/images/{image_id}")
    assert status == 200
    assert body["status"] == "READY"
    assert body["size"] == len(PHOTO)
    assert body["metadata"]["width"] > 0
    # the placeholder and dominant colour come from the renditions half, shown in the metadata
    assert body["metadata"]["placeholder"].startswith("data:image/webp;base64,")
    assert body["metadata"]["placeholder"] == item["preview"]["placeholder"]
    assert re.fullmatch(r"#[0-9a-f]{6}", body["metadata"]["dominant_color"])
    assert set(body["renditions"]) == {"large", "medium", "small"}
    for name, rendition in body["renditions"].items():
        query = parse_qs(urlsplit(rendition["url"]).query)
        assert "X-Amz-Signature" in query
        assert rendition["bytes"] == item["renditions"][name]["bytes"]
        assert rendition["width"] <= 1024
        assert rendition["format"] in {"JPEG", "WEBP"}


def test_cors_answers_preflight_and_names_only_configured_origins(api, lambda_context):
    status, headers, _ = request(
        api,
        lambda_context,
        "OPTIONS",
        "/uploads",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in headers["access-control-allow-headers"].lower()

    _, headers, _ = request(
        api, lambda_context, "POST", "/uploads", valid(), headers={"Origin": "https://evil.test"}
    )
    assert "access-control-allow-origin" not in headers
