"""Fault injection and write accounting for the embedded stack, to test failure and idempotency.

Faults: make chosen AWS calls fail or slow, to test the failure paths.

A fault names the service (from the request's SigV4 credential scope) and, optionally, what
else a request must match:

* ``method``: the HTTP method;
* ``path``: a regular expression searched in the URL-decoded path;
* ``operation``: the ``X-Amz-Target`` suffix or ``Action`` parameter (``UpdateItem``);
* ``body``: a regular expression searched in the request body as sent (decoded as UTF-8, bad
  bytes replaced), e.g. ``READY`` to fail only the DynamoDB UpdateItem that writes that status.
  The body is read only for requests that match a body fault's other fields, and is handed on
  to moto intact (``wsgi.input`` re-wrapped, ``CONTENT_LENGTH`` kept).

and what happens to a matching request:

* ``action: "error"`` (the default): it gets the error response (``status``, ``code``,
  ``message``, in the service's format) instead of reaching moto;
* ``action: "delay"``: it is passed on to moto unchanged, after ``delay`` seconds;
* ``delay`` (seconds, 0 to 900): how long the request is held first, with either action: a
  slow S3 GetObject that makes a Lambda time out, a slow error.

A fault applies ``times`` times, or until it is removed. Faults are managed over HTTP
(``/_devstack/faults``) so tests can use them against a running stack, in the spirit of
LocalStack's chaos API. A fault that does not validate (an unknown field, a bad regular
expression, a negative delay, an unknown action) is refused with 400.

Writes: every request that is not a read (any method but GET and HEAD) is counted by service,
method and path, so a test can ask "how many times was this key written?" (``/_devstack/writes``).
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request$")


def request_service(environ: dict[str, Any]) -> str | None:
    """The AWS service a request is signed for (header or presigned query)."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    match = _QUERY_SCOPE.match(credential)
    return match.group(1) if match else None


def request_operation(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    return parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]


MAX_DELAY_SECONDS = 900.0  # Lambda's longest timeout: anything longer is a mistake
ACTIONS = ("error", "delay")
_BODY_KEY = "devstack.body"


def request_body(environ: dict[str, Any]) -> bytes:
    """The request's body, read once and put back: ``wsgi.input`` is replaced by a stream of the
    same bytes (``CONTENT_LENGTH``, or ``wsgi.input_terminated`` for a chunked upload, kept as
    they were), so whatever reads the request next (moto) gets it whole."""
    if _BODY_KEY not in environ:
        if environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
        environ[_BODY_KEY] = body
        environ["wsgi.input"] = io.BytesIO(body)
    return environ[_BODY_KEY]


def _pattern(name: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a regular expression (a string)")
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"{name} is not a valid regular expression: {error}") from None


@dataclass
class Fault:
    service: str
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "fault injected by the embedded stack"
    method: str | None = None
    path: str | None = None
    operation: str | None = None
    body: str | None = None
    action: str = "error"
    delay: float = 0.0
    times: int | None = None
    hits: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        # reject a bad fault when it is added, not when a request happens to meet it
        _pattern("path", self.path)
        _pattern("body", self.body)
        if not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if isinstance(self.delay, bool) or not isinstance(self.delay, int | float):
            raise TypeError("delay must be a number of seconds")
        if not (math.isfinite(self.delay) and 0 <= self.delay <= MAX_DELAY_SECONDS):
            raise ValueError(f"delay must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
        self.delay = float(self.delay)
        if self.action == "delay" and self.delay == 0:
            raise ValueError('action "delay" needs a delay of more than 0 seconds')

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, environ: dict[str, Any]) -> bool:
        return self.matches_request(environ) and self.matches_body(
            request_body(environ) if self.body else b""
        )

    def matches_body(self, body: bytes) -> bool:
        return not self.body or re.search(self.body, body.decode(errors="replace")) is not None

    def matches_request(self, environ: dict[str, Any]) -> bool:
        """Everything but the body."""
        if self.used_up:
            return False
        if request_service(environ) != self.service:
            return False
        if self.method and environ.get("REQUEST_METHOD") != self.method.upper():
            return False
        if self.path and not re.search(self.path, unquote(environ.get("PATH_INFO", ""))):
            return False
        return not (self.operation and request_operation(environ) != self.operation)

    def response(self) -> tuple[str, list[tuple[str, str]], bytes]:
        status = f"{self.status} Injected Fault"
        if self.service == "s3":
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{self.code}</Code>"
                f"<Message>{self.message}</Message><RequestId>{self.id}</RequestId></Error>"
            ).encode()
            return status, [("Content-Type", "application/xml")], body
        body = json.dumps({"__type": self.code, "message": self.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", self.code)]
        return status, headers, body


class FaultInjector:
    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(**{k: v for k, v in spec.items() if k not in ("hits", "id")})
        with self._lock:
            self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str | None = None) -> None:
        with self._lock:
            if fault_id is None:
                self._faults.clear()
            else:
                self._faults.pop(fault_id, None)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults.values()]

    def match(self, environ: dict[str, Any]) -> Fault | None:
        """The first fault (in the order they were added) the request matches, its hit counted.

        The body is read (outside the lock: a client may be slow to send it) only when a body
        fault matches the rest of the request."""
        with self._lock:
            candidates = [f for f in self._faults.values() if f.matches_request(environ)]
        if not candidates:
            return None
        body = request_body(environ) if any(f.body for f in candidates) else b""
        with self._lock:
            for fault in candidates:
                if fault.id in self._faults and not fault.used_up and fault.matches_body(body):
                    fault.hits += 1
                    return fault
        return None


class WriteLog:
    """Counts of mutating requests, by (service, method, path)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def record(self, environ: dict[str, Any]) -> None:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            return
        key = (request_service(environ) or "?", method, unquote(environ.get("PATH_INFO", "")))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def count(self, service: str, path: str, method: str | None = None) -> dict[str, int]:
        """Writes to paths matching the ``path`` pattern, by path."""
        pattern = re.compile(path)
        with self._lock:
            items = list(self._counts.items())
        found: dict[str, int] = {}
        for (svc, verb, request_path), count in items:
            if (
                svc == service
                and (method is None or verb == method)
                and pattern.search(request_path)
            ):
                found[request_path] = found.get(request_path, 0) + count
        return found


class OperationCount:
    """Counts of every request the stack served, by service, operation and caller (``GET
    /_devstack/requests`` sums them by service and operation: what a workload costs the
    emulator, e.g. per image in make load; ``GET /_devstack/usage`` lists them by caller too)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def record(
        self,
        environ: dict[str, Any],
        service: str | None = None,
        *,
        operation: str | None = None,
        caller: str = "",
    ) -> None:
        name = service or request_service(environ) or "unsigned"
        operation = operation or request_operation(environ) or environ.get("REQUEST_METHOD", "GET")
        key = (name, operation, caller)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        with self._lock:
            for (service, operation, _), count in self._counts.items():
                name = f"{service} {operation}"
                found[name] = found.get(name, 0) + count
        return found

    def by_caller(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"service": s, "operation": o, "caller": c, "count": n}
                for (s, o, c), n in sorted(self._counts.items())
            ]
