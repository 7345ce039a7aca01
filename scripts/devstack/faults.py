"""Fault injection and write accounting for the embedded stack, to test failure and idempotency.

Faults: make chosen AWS calls fail, to test the failure paths.

A fault names the service (from the request's SigV4 credential scope) and, optionally, the HTTP
method, a regular expression searched in the URL-decoded path, and the operation (the
``X-Amz-Target`` suffix or ``Action`` parameter). Matching requests get the error response
instead of reaching moto, ``times`` times or until the fault is removed. Faults are managed over
HTTP (``/_devstack/faults``) so tests can use them against a running stack, in the spirit of
LocalStack's chaos API.

Writes: every request that is not a read (any method but GET and HEAD) is counted by service,
method and path, so a test can ask "how many times was this key written?" (``/_devstack/writes``).
"""

from __future__ import annotations

import json
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


@dataclass
class Fault:
    service: str
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "fault injected by the embedded stack"
    method: str | None = None
    path: str | None = None
    operation: str | None = None
    times: int | None = None
    hits: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.path is not None:
            re.compile(self.path)  # reject a bad pattern when the fault is added
        if not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")

    def matches(self, environ: dict[str, Any]) -> bool:
        if self.times is not None and self.hits >= self.times:
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
        with self._lock:
            for fault in self._faults.values():
                if fault.matches(environ):
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
