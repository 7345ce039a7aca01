"""Upload API: API Gateway (REST, Lambda proxy) -> presigned POSTs in, image status out.

    POST   /uploads       {filename, content_type, size} -> 201 {image_id, upload, expires_at, ...}
    GET    /images        the app's images, newest first, a page at a time
    GET    /images/{id}   status, metadata, failure, renditions with their URLs (CDN or presigned)
    PATCH  /images/{id}   {focus, crop_box}: where its cropped renditions are cut (made again)
    DELETE /images/{id}   the image, its original and its renditions

Errors are JSON ``{code, message, field?}`` with a precise status (400, 404, 405, 409, 413, 415);
bad input never produces a 5xx. The contract is docs/openapi.yaml; the routes are
``media_pipeline.routes``, matched exactly (see there).
"""

from __future__ import annotations

import json
import os
import re
from http import HTTPStatus
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from media_pipeline import delivery, routes
from media_pipeline.api_requests import ApiError
from media_pipeline.aws import TRACED_MODULES, client
from media_pipeline.config.api import ApiSettings
from media_pipeline.uploads import UploadApi

settings = ApiSettings.from_env()
logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()
# Presigned URLs with SigV4 (required by KMS-encrypted objects and every newer region).
s3 = client("s3", Config(signature_version="s3v4"))
# Rendition URLs: the CDN's (signed with the key in SSM, read when first needed), or presigned.
links = delivery.from_env(os.environ, s3=s3, ssm=lambda: client("ssm"))
# A deleted image's renditions are dropped from the CDN's caches too.
forget = delivery.invalidator_from_env(os.environ, cloudfront=lambda: client("cloudfront"))
# PATCH /images/{id} sends the image's renditions job.
api = UploadApi(
    settings,
    s3=s3,
    dynamodb=client("dynamodb"),
    links=links,
    forget=forget,
    sqs=client("sqs") if settings.renditions_queue_url else None,
)
cors = (
    CORSConfig(
        allow_origin=settings.cors_origins[0],
        extra_origins=list(settings.cors_origins[1:]),
        allow_headers=["Content-Type", "X-Api-Key", "Authorization"],
        expose_headers=["Location"],
        max_age=600,
    )
    if settings.cors_origins
    else None
)


class ExactRoutes(APIGatewayRestResolver):
    """Powertools' REST resolver with routes written as API Gateway writes resources
    (``/images/{id}``) and matched exactly (``routes.pattern``): Powertools' own patterns end
    in ``/*$``, so ``/images/%0A`` and ``/images//`` were the list and ``/images/x%0A`` was x."""

    @staticmethod
    def _compile_regex(rule: str, base_regex: str = "") -> re.Pattern[str]:
        return routes.pattern(rule)


app = ExactRoutes(cors=cors)
ANONYMOUS = "-"  # the owner of uploads requested without an API key (none on a deployment)


def _owner() -> str:
    """Who is asking: the API key's id (API Gateway puts it in the request context)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    return (context.get("identity") or {}).get("apiKeyId") or ANONYMOUS


def _path_parameter(name: str, matched: str) -> str:
    """A path parameter as API Gateway decoded it (``pathParameters``), if it is the segment the
    path holds, as sent or decoded (the event's ``path`` may be either). API Gateway routes the
    decoded path and forgives a trailing slash: ``/images/<id>%2F`` comes with ``id`` = ``<id>``,
    and must not reach that image. Without ``pathParameters`` (a direct invocation): the
    segment, percent-decoded."""
    given = (app.current_event.path_parameters or {}).get(name)
    if given is None:
        return unquote(matched)
    if given not in (matched, unquote(matched)):
        path = app.current_event.path
        raise ApiError(404, "not_found", f"no route {path[:100]!a}")
    return given


def _error(error: ApiError, **headers: str) -> Response:
    metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=error.body(),
        headers=headers or None,
    )


@app.post("/uploads")
@tracer.capture_method
def create_upload() -> Response:
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {error}") from None
    created = api.create_upload(body, owner=_owner())
    logger.append_keys(image_id=created["image_id"])
    logger.info("upload requested", max_bytes=created["max_bytes"])
    metrics.add_metric(name="UploadsRequested", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body=created,
        headers={"Location": f"/images/{created['image_id']}"},
    )


@app.get("/images/{id}")
@tracer.capture_method
def get_image(id: str) -> dict:
    image_id = _path_parameter("id", id)
    logger.append_keys(image_id=image_id)
    view = api.describe(image_id)
    metrics.add_metric(name="ImagesDescribed", unit=MetricUnit.Count, value=1)
    return view


@app.get("/images")
@tracer.capture_method
def list_images() -> dict:
    page = api.list_images(_owner(), app.current_event.query_string_parameters)
    metrics.add_metric(name="ImagesListed", unit=MetricUnit.Count, value=1)
    return page


@app.patch("/images/{id}")
@tracer.capture_method
def reframe_image(id: str) -> Response:
    image_id = _path_parameter("id", id)
    logger.append_keys(image_id=image_id)
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {error}") from None
    view = api.reframe(image_id, body)
    logger.info("image reframed", revision=view["framing"]["revision"])
    metrics.add_metric(name="ImagesReframed", unit=MetricUnit.Count, value=1)
    return Response(status_code=HTTPStatus.ACCEPTED, content_type="application/json", body=view)


@app.delete("/images/{id}")
@tracer.capture_method
def delete_image(id: str) -> Response:
    image_id = _path_parameter("id", id)
    logger.append_keys(image_id=image_id)
    outcome = api.delete(image_id)
    logger.info("image deleted", outcome=outcome)
    metrics.add_metric(name="ImagesDeleted", unit=MetricUnit.Count, value=1)
    return Response(status_code=HTTPStatus.NO_CONTENT, content_type=None, body=None)


@app.exception_handler(ApiError)
def api_error(error: ApiError) -> Response:
    logger.info("request refused", status=error.status, code=error.code, field=error.field)
    return _error(error)


@app.not_found
def not_found(_: NotFoundError) -> Response:
    path = app.current_event.path
    method = app.current_event.http_method
    found = routes.route(path)
    if found is not None:
        template = found[0]
        methods = routes.ROUTES[template]
        allowed = ", ".join((*methods, "OPTIONS") if cors else methods)
        return _error(
            ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {template} (allowed: {allowed})",
            ),
            Allow=allowed,
        )
    return _error(ApiError(404, "not_found", f"no route {path[:100]!a}"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
