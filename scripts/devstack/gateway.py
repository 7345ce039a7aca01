"""The local API Gateway: serves the emulator's REST APIs (Lambda proxy routes) on loopback.

What Terraform created is the single source of truth: the routes (resources, methods and their
AWS_PROXY integrations), stages, API keys and usage plans are read from the emulator's own
API Gateway API, and a request to

    https://127.0.0.1:<port>/_aws/execute-api/<api id>/<stage>/<path>

(LocalStack's URL shape; its deprecated ``/restapis/<api id>/<stage>/_user_request_/<path>`` is
served too) is matched against them the way API Gateway would: the most
specific resource, the method or else ANY; a method that requires an API key gets
``403 {"message": "Forbidden"}`` without an enabled key of a usage plan of that stage; no route
is ``403 {"message": "Missing Authentication Token"}``. The function gets the REST (v1) proxy
event and is run by the local Lambda runtime; a failed invocation or a malformed proxy response
is ``502 {"message": "Internal server error"}``.

Paths as API Gateway treats them: the path is matched percent-decoded, so an encoded slash
(``%2F``) separates segments like any other and a ``{param}`` is one whole, non-empty segment
(``/images/%2F`` and ``/images//`` are no route; ``/images/%0A`` is ``{id}`` = ``"\n"``); a
trailing slash is answered by the resource without it (``/images/`` by ``/images``). The event's
``path`` is the path as sent, still percent-encoded (as REST APIs deliver it), and its
``pathParameters`` are decoded.

Not emulated: usage plan throttles and quotas, Cognito authorizers (a method using one is
refused with 401), request validators, non-proxy integrations (answered 500).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from devstack.sandbox import Result

# A stage's routes, at LocalStack's URL (/_aws/execute-api/<id>/<stage>/...) or its deprecated
# one (/restapis/<id>/<stage>/_user_request_/...): see user_request().
USER_REQUEST = re.compile(
    r"^(?:/_aws/execute-api/([^/]+)/([^/]+)|/restapis/([^/]+)/([^/]+)/_user_request_)(/.*)?$",
    re.DOTALL,
)


def user_request(raw_path: str) -> tuple[str, str, str] | None:
    """(API id, stage, path within the stage) of a request to a stage's routes, else None."""
    match = USER_REQUEST.match(raw_path)
    if match is None:
        return None
    api_id, stage = match.group(1) or match.group(3), match.group(2) or match.group(4)
    return api_id, stage, match.group(5) or "/"


_FUNCTION_IN_URI = re.compile(r":lambda:path/2015-03-31/functions/(.+)/invocations$")


@dataclass(frozen=True)
class Method:
    api_key_required: bool
    authorization: str
    integration_type: str | None
    function: str | None  # the function ARN of an AWS_PROXY integration


@dataclass(frozen=True)
class Resource:
    path: str  # e.g. /images/{id}
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    methods: dict[str, Method]
    specificity: tuple[int, int]  # literal segments first, then greedy last


@dataclass
class RestApi:
    id: str
    resources: list[Resource] = field(default_factory=list)
    stages: set[str] = field(default_factory=set)
    keys: dict[str, set[str]] = field(default_factory=dict)  # stage -> enabled key values

    def route(self, path: str) -> tuple[Resource, dict[str, str]] | None:
        """The resource a path is on, most specific first, and its parameters. ``path`` is
        percent-decoded: a decoded ``/`` separates segments, so no ``{param}`` ever holds one."""
        for resource in self.resources:
            match = resource.pattern.fullmatch(path)
            if match:
                return resource, dict(zip(resource.params, match.groups(), strict=True))
        return None


def compile_path(path: str) -> tuple[re.Pattern[str], tuple[str, ...], tuple[int, int]]:
    """``/images/{id}`` -> a regex with one group per parameter (``{proxy+}`` is greedy)."""
    parts, params, literal, greedy = [], [], 0, 0
    for segment in path.strip("/").split("/") if path != "/" else []:
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append("(.+)")
            params.append(segment[1:-2])
            greedy += 1
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append("([^/]+)")
            params.append(segment[1:-1])
        else:
            parts.append(re.escape(segment))
            literal += 1
    regex = "/" + "/".join(parts) + "/?" if parts else "/?"
    return re.compile(regex, re.DOTALL), tuple(params), (literal, -greedy)


class LocalGateway:
    """Reads the REST APIs from the emulator; answers requests through ``invoke``."""

    def __init__(self, client: Any, invoke: Any) -> None:
        self._client = client
        self._invoke = invoke
        self._apis: dict[str, RestApi] = {}
        self._key_ids: dict[str, str] = {}  # key value -> key id (requestContext.identity)
        self._lock = threading.Lock()

    # -- configuration ----------------------------------------------------------------------

    def refresh(self) -> None:
        apigw = self._client
        keys = {
            key["id"]: key["value"]
            for page in apigw.get_paginator("get_api_keys").paginate(includeValues=True)
            for key in page["items"]
            if key.get("enabled")
        }
        stage_keys: dict[tuple[str, str], set[str]] = {}
        for page in apigw.get_paginator("get_usage_plans").paginate():
            for plan in page["items"]:
                plan_keys = {
                    keys[k["id"]]
                    for kpage in apigw.get_paginator("get_usage_plan_keys").paginate(
                        usagePlanId=plan["id"]
                    )
                    for k in kpage["items"]
                    if k["id"] in keys
                }
                for stage in plan.get("apiStages", []):
                    stage_keys.setdefault((stage["apiId"], stage["stage"]), set()).update(plan_keys)
        apis = {}
        for page in apigw.get_paginator("get_rest_apis").paginate():
            for item in page["items"]:
                api = RestApi(id=item["id"])
                api.stages = {s["stageName"] for s in apigw.get_stages(restApiId=api.id)["item"]}
                api.keys = {s: stage_keys.get((api.id, s), set()) for s in api.stages}
                api.resources = self._resources(api.id)
                apis[api.id] = api
        with self._lock:
            self._apis = apis
            self._key_ids = {value: key_id for key_id, value in keys.items()}

    def _resources(self, api_id: str) -> list[Resource]:
        apigw = self._client
        resources = []
        for page in apigw.get_paginator("get_resources").paginate(restApiId=api_id):
            for item in page["items"]:
                methods = {}
                for http_method in item.get("resourceMethods") or {}:
                    method = apigw.get_method(
                        restApiId=api_id, resourceId=item["id"], httpMethod=http_method
                    )
                    integration = method.get("methodIntegration") or {}
                    function = _FUNCTION_IN_URI.search(integration.get("uri", ""))
                    methods[http_method] = Method(
                        api_key_required=bool(method.get("apiKeyRequired")),
                        authorization=method.get("authorizationType", "NONE"),
                        integration_type=integration.get("type"),
                        function=function.group(1) if function else None,
                    )
                pattern, params, specificity = compile_path(item["path"])
                resources.append(Resource(item["path"], pattern, params, methods, specificity))
        resources.sort(key=lambda r: r.specificity, reverse=True)
        return resources

    def apis(self) -> dict[str, Any]:
        with self._lock:
            return {
                api.id: {
                    "stages": sorted(api.stages),
                    "routes": {r.path: sorted(r.methods) for r in api.resources if r.methods},
                }
                for api in self._apis.values()
            }

    def route_name(self, environ: dict[str, Any]) -> str | None:
        """``<METHOD> <resource>`` (``POST /uploads``, ``GET /images/{id}``) of a request to a
        stage's routes, for counting requests by route; None when it names no known API."""
        request = user_request(_raw_path(environ))
        if request is None:
            return None
        api_id, _, path = request
        with self._lock:
            api = self._apis.get(api_id)
        routed = api.route(path) if api is not None else None
        method = environ.get("REQUEST_METHOD", "GET").upper()
        return f"{method} {routed[0].path if routed else '(no route)'}"

    # -- requests ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any, body: bytes) -> list[bytes]:
        request = user_request(_raw_path(environ))
        if request is None:
            return _reply(start_response, 404, {"message": "Not Found"})
        api_id, stage, path = request
        with self._lock:
            api = self._apis.get(api_id)
        if api is None or stage not in api.stages:
            return _reply(start_response, 403, {"message": "Forbidden"})
        routed = api.route(unquote(path))
        http_method = environ.get("REQUEST_METHOD", "GET").upper()
        method = None
        if routed is not None:
            method = routed[0].methods.get(http_method) or routed[0].methods.get("ANY")
        if routed is None or method is None:
            return _reply(start_response, 403, {"message": "Missing Authentication Token"})
        resource, path_params = routed

        headers = _headers(environ)
        api_key = headers.get("X-Api-Key")  # _headers title-cases every name
        if method.api_key_required and api_key not in api.keys.get(stage, set()):
            return _reply(start_response, 403, {"message": "Forbidden"})
        if method.authorization not in ("NONE", "AWS_IAM"):
            return _reply(start_response, 401, {"message": "Unauthorized"})
        if method.integration_type != "AWS_PROXY" or not method.function:
            return _reply(start_response, 500, {"message": "Internal server error"})

        request_id = str(uuid.uuid4())
        event = proxy_event(
            environ,
            body,
            headers=headers,
            resource=resource.path,
            path=path,
            path_params=path_params,
            stage=stage,
            api_id=api_id,
            request_id=request_id,
            api_key=api_key if method.api_key_required else None,
            api_key_id=self._key_ids.get(api_key or "") if method.api_key_required else None,
        )
        result = self._invoke(method.function, json.dumps(event).encode(), "apigateway")
        return _proxy_response(start_response, result, request_id)


def _raw_path(environ: dict[str, Any]) -> str:
    """The request path still percent-encoded, as sent (the event's ``path``; routing decodes it
    once, as UTF-8)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return urlsplit(raw).path
    return quote(environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"))


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    return headers


def proxy_event(
    environ: dict[str, Any],
    body: bytes,
    *,
    headers: dict[str, str],
    resource: str,
    path: str,
    path_params: dict[str, str],
    stage: str,
    api_id: str,
    request_id: str,
    api_key: str | None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """The REST API (payload v1) Lambda proxy event, as API Gateway builds it."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    method = environ.get("REQUEST_METHOD", "GET").upper()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource,
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": environ.get("HTTP_HOST", "127.0.0.1"),
            "identity": {
                "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"),
                "userAgent": environ.get("HTTP_USER_AGENT"),
                "apiKey": api_key,
                "apiKeyId": api_key_id,
            },
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def _proxy_response(start_response: Any, result: Result, request_id: str) -> list[bytes]:
    """Turn the function's proxy response into HTTP, or a 502 if it is not one."""
    response = result.json() if result.ok else None
    status = response.get("statusCode") if isinstance(response, dict) else None
    if not isinstance(status, int) or not 100 <= status <= 599:
        return _reply(start_response, 502, {"message": "Internal server error"}, request_id)
    headers: list[tuple[str, str]] = [
        (str(k), str(v)) for k, v in (response.get("headers") or {}).items()
    ]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(v)) for v in values]
    body = response.get("body") or ""
    data = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
    names = {k.lower() for k, _ in headers}
    if "content-type" not in names:
        headers.append(("Content-Type", "application/json"))
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(
        f"{status} {_reason(status)}",
        [*headers, ("Content-Length", str(len(data))), ("x-amzn-RequestId", request_id)],
    )
    return [data]


def _reply(
    start_response: Any, status: int, body: dict[str, Any], request_id: str | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {_reason(status)}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", request_id or str(uuid.uuid4())),
            ("x-amzn-ErrorType", "ForbiddenException" if status == 403 else "Error"),
        ],
    )
    return [data]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
