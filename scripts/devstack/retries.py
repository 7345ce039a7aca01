"""A retried request gets the answer its earlier attempt got, instead of being carried out twice.

Every AWS SDK (botocore, the Go SDK of the Terraform provider) names each operation call with an
``amz-sdk-invocation-id`` header, the same on every attempt (``amz-sdk-request: attempt=N``).
An SDK sends a call again when it gets no answer it can use: the connection dropped, the read
timed out, the answer was a 5xx. If the emulator had carried out the earlier attempt and only its
answer was lost or late, the retry is applied a second time: a create then fails as a duplicate
(Lambda's CreateFunction answers 409 "Function already exist", which the Terraform provider
retries for minutes before the apply fails), or makes a second event source mapping or message.
That is how `make up` failed on a busy machine: the provider's first CreateFunction was carried
out, its second attempt (70 ms later, on another connection) was refused as a duplicate. With the
server's connections logged, two other calls were seen to go the same way: carried out and
answered, then the client closed that connection within a millisecond without taking the answer,
and sent the call again on another one.

:class:`RetryLedger` remembers the latest successful (2xx) answers by invocation id, method and
path. Another attempt of a call already answered gets that answer again, logged as a warning (the
trace of an answer that did not reach its client); an attempt of a call whose earlier attempt is
still being carried out waits for it first. Reads (GET, HEAD, OPTIONS), requests that name no
invocation and answers too large to keep pass through as before; so does a second call to create
the same thing, which is refused as on AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("devstack.retries")

CAPACITY = 4096  # calls remembered (an SDK retries within seconds; an apply makes ~400)
MAX_BYTES = 16 * 1024 * 1024  # kept answer bodies in all
MAX_ANSWER_BYTES = 1024 * 1024  # a larger answer (a big ReceiveMessage) is not kept
WAIT_SECONDS = 60.0  # for an earlier attempt still being carried out

_READS = frozenset({"GET", "HEAD", "OPTIONS"})

Answer = tuple[str, list[tuple[str, str]], bytes]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class _Call:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: Answer | None = None
    answered_at: float = 0.0
    attempts: int = 0


def call_key(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """What names one SDK operation call across its attempts, or None for a read or a request
    that names no invocation (a browser's form upload, the stack's own controls)."""
    invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if not invocation or method in _READS:
        return None
    return invocation, method, environ.get("RAW_URI") or environ.get("PATH_INFO", "")


def attempt_number(environ: dict[str, Any]) -> str:
    """``attempt=N`` of the ``amz-sdk-request`` header, for the log."""
    for part in environ.get("HTTP_AMZ_SDK_REQUEST", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt":
            return value
    return "?"


class RetryLedger:
    """The answers to the latest SDK calls, to give another attempt of one the same answer."""

    def __init__(
        self,
        capacity: int = CAPACITY,
        max_bytes: int = MAX_BYTES,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._calls: OrderedDict[tuple[str, str, str], _Call] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._max_answer_bytes = max_answer_bytes
        self._wait_seconds = wait_seconds

    def serve(
        self, app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """``app(environ, start_response)``, unless this is another attempt of a call already
        answered: then that answer."""
        key = call_key(environ)
        if key is None:
            return app(environ, start_response)
        call = self._call(key)
        if not call.lock.acquire(timeout=self._wait_seconds):
            return app(environ, start_response)  # the earlier attempt is stuck: do not wait on
        try:
            call.attempts += 1
            if call.answer is not None:
                return self._replay(call, call.answer, environ, start_response)
            answer = _run(app, environ, start_response)
            if answer[0].startswith("2") and len(answer[2]) <= self._max_answer_bytes:
                self._keep(key, call, answer)
            return [answer[2]]
        finally:
            call.lock.release()

    def _call(self, key: tuple[str, str, str]) -> _Call:
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
                self._evict()
            else:
                self._calls.move_to_end(key)
            return call

    def _keep(self, key: tuple[str, str, str], call: _Call, answer: Answer) -> None:
        with self._lock:
            if self._calls.get(key) is not call:
                return  # forgotten while it ran (a burst of newer calls)
            call.answer, call.answered_at = answer, time.monotonic()
            self._bytes += len(answer[2])
            self._evict()

    def _evict(self) -> None:  # under self._lock
        while self._calls and (len(self._calls) > self._capacity or self._bytes > self._max_bytes):
            _, oldest = self._calls.popitem(last=False)
            if oldest.answer is not None:
                self._bytes -= len(oldest.answer[2])

    def _replay(
        self,
        call: _Call,
        answer: Answer,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> list[bytes]:
        log.warning(
            "attempt %s of %s %s (invocation %s) was answered again with the %s its earlier"
            " attempt got %.1f s ago: that answer did not reach the client (%d attempts so far)",
            attempt_number(environ),
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO", ""),
            environ.get("HTTP_AMZ_SDK_INVOCATION_ID"),
            answer[0],
            time.monotonic() - call.answered_at,
            call.attempts,
        )
        status, headers, body = answer
        start_response(status, list(headers))
        return [body]


def _run(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> Answer:
    """Call the app and collect its whole answer (moto answers from memory)."""
    started: list[Any] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, list(headers)]
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started or ["500 Internal Server Error", []]
    return status, headers, body
