"""The embedded stack's one process: moto's AWS APIs plus the local Lambda runtime, on loopback.

    python -m devstack.server --port 4599 --state-dir .local --code-dir build ...

Everything is served on one HTTPS port (its certificate from a CA made under .local/tls): moto
answers the AWS APIs; ``/_devstack/...`` is the stack's own control surface; Lambda's
``Invoke`` API is answered by the local runtime, so ``aws lambda invoke`` works as on AWS; and
the REST APIs' routes, ``/_aws/execute-api/<id>/<stage>/...``, by the local API Gateway
(gateway.py). EventBridge scheduled rules that target functions are fired by the runtime
(schedules.py: ``rate()`` only; ``cron()`` is listed as not fired).

The control surface (JSON in and out):

``GET  /_devstack/health``
    ``{"status": "ok", "pid", "uptime_s", "cpu_s"}`` (``cpu_s``: the server process's CPU time,
    all threads: moto, the runtime's pollers; not the functions, which are processes of their
    own).
``GET  /_devstack/status``
    functions (environments idle/busy, invocations, errors, cold starts), event source
    mappings, REST APIs, scheduled rules (``schedules``: expression, function, fired,
    next_in_s, last_error, not_fired).
``POST /_devstack/refresh``
    reconcile with the emulator now (after a deployment); answers the status.
``POST /_devstack/faults``
    add a fault (faults.py): ``{"service": "s3", "method": "GET", "path": "regex",
    "operation": "GetItem", "body": "regex", "action": "error"|"delay", "delay": 2.5,
    "status": 503, "code": "SlowDown", "message": "...", "times": 1}``, all but ``service``
    optional; answers ``201 {"id"}``, or ``400 {"error"}`` for a fault that does not validate.
``GET  /_devstack/faults``, ``DELETE /_devstack/faults``, ``DELETE /_devstack/faults/<id>``
    list the faults (with their ``hits``), remove them all, remove one.
``POST /_devstack/kill``
    ``{"function": "<name or ARN>", "all": false}``: SIGKILL every execution environment of the
    function that is busy with an invocation (with ``"all": true``, the idle ones too), as the
    Lambda service ends a crashed or out-of-memory environment. The invocation in flight ends
    with ``Runtime.ExitError`` ("Runtime exited with error: signal: killed"), which the pollers
    treat as any function error; the next invocation starts a new environment. Answers
    ``{"function", "killed": <count>}``; 404 for a function the runtime does not run.
``GET  /_devstack/writes?service=s3&path=regex&method=PUT``
    how many mutating requests each matching path received.
``GET  /_devstack/requests``
    ``{"requests": {"<service> <operation>": count}}``: every request served since start, by
    the service it is signed for and its operation (``X-Amz-Target`` or ``Action``; the HTTP
    method for REST services such as S3 and Lambda); a REST API's routes count as
    ``execute-api`` with their method and resource (``POST /uploads``); a browser's form upload
    to S3 (a presigned POST, signed in its form, not its headers) as ``s3``.
``GET  /_devstack/usage``
    what the requests served since start would be billed for on AWS (usage.py): requests by
    service, operation and caller, S3 requests by bucket and class and the bytes stored, SQS
    requests by queue (empty receives told apart), EventBridge's matched events and target
    invocations, DynamoDB capacity units by table, index and caller, per partition key value,
    and what each table and index stores. ``make capacity`` takes it before and after a
    workload.
``GET  /_edge/<distribution domain>/<key>``
    a CloudFront distribution of the emulator, served as CloudFront serves it: signed URLs
    checked against its trusted key groups, objects from its S3 origin, conditional requests
    (edge.py). The API signs rendition URLs for this address on a local stack.
``GET  /_devstack/iam?calls=0&denials_since=N``
    IAM enforcement (iam.py): ``enforced``; ``sequence``, the number of decisions so far; every
    decision made for a principal other than the administrator (``calls``: function, role,
    principal, caller, action, resource, decision, reason, count, and ``first``, the sequence
    number of its first decision); the ``denials`` after ``N`` in order (``sequence``, time);
    and each role that Lambda trusts with its policies (``roles``). ``calls=0``: only the
    sequence and the denials.
``POST /_devstack/iam/credentials``
    ``{"function": name}``: credentials of a session of the function's role named
    ``iam-probe``, for the tests that try what a function must never be able to do (its
    denials are theirs to check: the e2e tests' check of denials leaves them out).
``POST /_devstack/shutdown``
    stop the stack.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from tooling.pythons import host_runtime

from devstack import edge, iam, moto_patches, tls, usage
from devstack.faults import (
    FaultInjector,
    OperationCount,
    WriteLog,
    request_body,
    request_operation,
    request_service,
)
from devstack.gateway import USER_REQUEST
from devstack.processes import alive
from devstack.retries import RetryLedger
from devstack.runtime import LocalLambda

_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
log = logging.getLogger("devstack")


class DevstackApp:
    """WSGI: the control surface and Lambda Invoke here; everything else (after faults) to moto."""

    def __init__(
        self, moto_app: Any, runtime: LocalLambda, faults: FaultInjector, shutdown: threading.Event
    ) -> None:
        self._moto = moto_app
        self._runtime = runtime
        self._faults = faults
        self._writes = WriteLog()
        self._operations = OperationCount()
        self.usage = usage.UsageRecorder()
        self._retries = RetryLedger()
        self._shutdown = shutdown
        self.started = time.time()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # Moto and the gateway read the path as sent (an encoded "/" stays in its S3 key) from
        # RAW_URI, werkzeug's name; cheroot calls it REQUEST_URI.
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        moto_patches.request_context.secure = environ.get("wsgi.url_scheme") == "https"
        moto_patches.request_context.raw_uri = environ["RAW_URI"]  # a presigned URL's, as signed
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_devstack/"):
            return self._control(environ, start_response, path.removeprefix("/_devstack/"))
        if path.startswith(edge.PREFIX):  # a CloudFront distribution's URL (devstack/edge.py)
            self._operations.record(
                environ, "cloudfront", operation="edge", caller=usage.caller_of(environ)
            )
            return edge.serve(environ, start_response)
        fault = self._faults.match(environ)
        if fault is not None and fault.action == "error":
            _read_body(environ)  # a client still sending its body must not see the connection drop
            self._shutdown.wait(fault.delay)
            status, headers, body = fault.response()
            start_response(status, [*headers, ("Content-Length", str(len(body)))])
            return [body]
        if fault is not None:  # action "delay": held, then passed on unchanged
            self._shutdown.wait(fault.delay)
        self._writes.record(environ)
        caller = usage.caller_of(environ)
        moto_patches.request_context.caller = caller
        if USER_REQUEST.match(path):  # a REST API's route: the local API Gateway
            route = getattr(self._runtime.gateway, "route_name", lambda _: None)(environ)
            self._operations.record(environ, "execute-api", operation=route, caller=caller)
            return self._runtime.gateway(environ, start_response, _read_body(environ))
        service = _service(environ)
        operation = request_operation(environ) or _form_action(environ)
        self._operations.record(environ, service, operation=operation, caller=caller)
        if service == "s3":
            self.usage.s3(environ, caller)
        invoke = _INVOKE.match(path)
        if invoke and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(environ, start_response, unquote(invoke.group(1)))
        # moto has applied the request now, or this is another attempt of one it applied
        # (retries.py: a retry whose first answer was lost gets that answer, not a duplicate)
        response = self._retries.serve(self._moto, environ, start_response)
        if changes_configuration(environ):
            self._runtime.configuration_changed()
        if service == "sqs":
            answer = b"".join(response)  # moto answers from memory
            self.usage.sqs(environ, operation or "", caller, answer)
            return [answer]
        return response

    def _invoke(self, environ: dict[str, Any], start_response: Any, function: str) -> Any:
        payload = _read_body(environ)
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "DryRun":
            return _reply(start_response, "204 No Content", b"")
        if invocation_type == "Event":
            threading.Thread(
                target=self._runtime.invoke, args=(function, payload, "invoke:event"), daemon=True
            ).start()
            return _reply(start_response, "202 Accepted", b"")
        result = self._runtime.invoke(function, payload, "invoke")
        if result.error == "NotFound":
            return _reply(
                start_response,
                "404 Not Found",
                result.payload,
                [("x-amzn-ErrorType", "ResourceNotFoundException")],
            )
        if result.error == "Throttled":
            return _reply(
                start_response,
                "429 Too Many Requests",
                result.payload,
                [("x-amzn-ErrorType", "TooManyRequestsException")],
            )
        headers = [("X-Amz-Executed-Version", "$LATEST"), ("x-amzn-RequestId", result.request_id)]
        if result.error:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return _reply(start_response, "200 OK", result.payload, headers)

    def _control(self, environ: dict[str, Any], start_response: Any, route: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if route == "health":
            return _json(
                start_response,
                {
                    "status": "ok",
                    "pid": os.getpid(),
                    "uptime_s": round(time.time() - self.started, 1),
                    "cpu_s": round(time.process_time(), 3),
                },
            )
        if route == "status":
            return _json(start_response, self._runtime.status())
        if route == "refresh" and method == "POST":
            self._runtime.refresh_now()
            return _json(start_response, self._runtime.status())
        if route == "faults":
            if method == "POST":
                try:
                    fault = self._faults.add(json.loads(_read_body(environ) or b"{}"))
                except (TypeError, ValueError) as error:
                    return _json(start_response, {"error": str(error)}, "400 Bad Request")
                return _json(start_response, {"id": fault.id}, "201 Created")
            if method == "DELETE":
                self._faults.remove()
                return _json(start_response, {"faults": []})
            return _json(start_response, {"faults": self._faults.list()})
        if route.startswith("faults/") and method == "DELETE":
            self._faults.remove(route.removeprefix("faults/"))
            return _json(start_response, {"faults": self._faults.list()})
        if route == "kill" and method == "POST":
            return self._kill(environ, start_response)
        if route == "writes":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            service, pattern = query.get("service", ["s3"])[0], query.get("path", [""])[0]
            return _json(
                start_response,
                {"writes": self._writes.count(service, pattern, query.get("method", [None])[0])},
            )
        if route in ("requests", "usage", "iam", "iam/credentials"):
            return self._reports(environ, start_response, route, method)
        if route == "shutdown" and method == "POST":
            self._shutdown.set()
            return _json(start_response, {"status": "stopping"})
        return _json(
            start_response,
            {"error": f"no such route: {method} /_devstack/{route}"},
            "404 Not Found",
        )

    def _counts(self, route: str) -> dict[str, Any]:
        if route == "requests":
            return {"requests": self._operations.counts()}
        return self.usage.snapshot(self._operations.by_caller())

    def _reports(
        self, environ: dict[str, Any], start_response: Any, route: str, method: str
    ) -> Any:
        if route in ("requests", "usage"):
            return _json(start_response, self._counts(route))
        if route == "iam":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return _json(
                start_response,
                self._runtime.iam.snapshot(
                    calls=query.get("calls", ["1"])[0] != "0",
                    denials_since=int(query.get("denials_since", ["0"])[0]),
                ),
            )
        if route == "iam/credentials" and method == "POST":
            return self._credentials(environ, start_response)
        return _json(
            start_response,
            {"error": f"no such route: {method} /_devstack/{route}"},
            "404 Not Found",
        )

    def _credentials(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            function = json.loads(_read_body(environ) or b"{}")["function"]
        except (KeyError, TypeError, ValueError) as error:
            return _json(
                start_response,
                {"error": f'expected {{"function": name}}: {error}'},
                "400 Bad Request",
            )
        # a session of its own ("iam-probe"): what it is denied is the negative tests' business
        credentials = self._runtime.credentials_of(str(function), session=iam.PROBE)
        if credentials is None:
            return _json(
                start_response, {"error": f"no such function: {function}"}, "404 Not Found"
            )
        return _json(
            start_response,
            {"function": function, "enforced": self._runtime.iam.enabled, **credentials},
        )

    def _kill(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            function, include_idle = _kill_request(_read_body(environ))
        except (KeyError, TypeError, ValueError) as error:
            message = f'expected {{"function": name, "all": false}}: {error}'
            return _json(start_response, {"error": message}, "400 Bad Request")
        killed = self._runtime.kill(function, include_idle=include_idle)
        if killed is None:
            return _json(
                start_response, {"error": f"no such function: {function}"}, "404 Not Found"
            )
        log.info("killed %d environment(s) of %s", killed, function)
        return _json(start_response, {"function": function, "killed": killed})


def _kill_request(body: bytes) -> tuple[str, bool]:
    spec = json.loads(body or b"{}")
    function, include_idle = spec["function"], spec.get("all", False)
    if not isinstance(function, str) or not isinstance(include_idle, bool):
        raise TypeError("function must be a string and all a boolean")
    return function, include_idle


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, sized by Content-Length or, for chunked uploads, by the stream.

    boto3 sends S3 PutObject as ``Transfer-Encoding: chunked`` (aws-chunked with a checksum
    trailer) and no Content-Length; werkzeug then marks the input as terminated by itself.
    """
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"].read()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _reply(
    start_response: Any, status: str, body: bytes, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


def _service(environ: dict[str, Any]) -> str | None:
    """The service a request is for: the one it is signed for, with DynamoDB Streams told from
    DynamoDB (both sign as ``dynamodb``) and a browser-style form upload (a presigned POST: its
    signature is a form field, not a header), which only S3 accepts, as ``s3``."""
    service = request_service(environ)
    if service == "dynamodb" and environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDBStreams"):
        return "dynamodbstreams"
    form = environ.get("CONTENT_TYPE", "").startswith("multipart/form-data")
    if service is None and environ.get("REQUEST_METHOD") == "POST" and form:
        return "s3"
    return service


def _form_action(environ: dict[str, Any]) -> str | None:
    """The ``Action`` of a query-protocol request sent as a form (SNS, STS, IAM, ...)."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    form = parse_qs(request_body(environ).decode(errors="replace"))
    return form.get("Action", [None])[0]


# EventBridge speaks JSON over POST, reads included: these are the actions that change rules.
_RULE_WRITES = {"PutRule", "DeleteRule", "EnableRule", "DisableRule", "PutTargets", "RemoveTargets"}


def changes_configuration(environ: dict[str, Any]) -> bool:
    """Does this request (not an Invoke) write what the local runtime follows: functions, event
    source mappings, concurrency (Lambda), REST APIs, keys, usage plans (API Gateway), scheduled
    rules and their targets (EventBridge)?"""
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
        return False
    service = request_service(environ)
    if service == "events":
        return request_operation(environ) in _RULE_WRITES
    return service in ("lambda", "apigateway")


def _json(start_response: Any, value: Any, status: str = "200 OK") -> list[bytes]:
    return _reply(start_response, status, json.dumps(value, indent=1).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True, help="the HTTPS port")
    parser.add_argument(
        "--http-port", type=int, help="also serve plain HTTP here (TLS-only policies refuse it)"
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--code-dir", type=Path, action="append", required=True, help="where built zips are"
    )
    parser.add_argument("--runtime-requirements", type=Path, required=True)
    parser.add_argument(
        "--capacity", type=int, default=2, help="execution environments per function"
    )
    parser.add_argument("--watch-pid", type=int, help="stop when this process is gone")
    parser.add_argument(
        "--iam",
        choices=["enforce", "off"],
        default="enforce",
        help="enforce: each function calls AWS as its role, every call authorised (iam.py); "
        "off: everything as the administrator, nothing authorised",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call is noise

    moto_patches.apply()
    from moto.moto_server.werkzeug_app import (  # after the patches
        DomainDispatcherApplication,
        create_backend_app,
    )

    enforcement = iam.Enforcement(enabled=args.iam == "enforce", region=args.region)
    certificates = tls.ensure(args.state_dir.resolve() / "tls")
    endpoint = f"https://127.0.0.1:{args.port}"
    runtime = LocalLambda(
        endpoint=endpoint,
        ca_bundle=certificates.ca,
        region=args.region,
        state_dir=args.state_dir.resolve(),
        code_dirs=[d.resolve() for d in args.code_dir],
        runtime_requirements=args.runtime_requirements.resolve(),
        capacity=args.capacity,
        enforcement=enforcement,
    )
    shutdown = threading.Event()
    faults = FaultInjector()
    app = DevstackApp(DomainDispatcherApplication(create_backend_app), runtime, faults, shutdown)
    usage.install(app.usage)
    iam.install(enforcement)
    servers = [serve(app, args.port, certificates)]
    if args.http_port:
        servers.append(serve(app, args.http_port))
    runtime.start(expected_runtimes=(host_runtime(),))
    log.info("serving AWS APIs and the local Lambda runtime on %s (pid %d)", endpoint, os.getpid())

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: shutdown.set())
    while not shutdown.wait(1.0):
        if args.watch_pid and not alive(args.watch_pid):
            log.info("process %d is gone: stopping", args.watch_pid)
            break
    log.info("stopping")
    runtime.stop()
    for server in servers:
        server.stop()
    return 0


# Every AWS call of the workers, the pollers and the tests comes here. Werkzeug's server (moto's
# own) closes the connection after each response, so each call paid a new TCP connection, a TLS
# handshake and a thread: about 12 ms of a 16 ms call on this machine. Cheroot keeps HTTP/1.1
# connections open and serves them from a pool; idle connections wait in its selector, not in a
# thread. The pool is large because requests nest: an API request or a synchronous Invoke holds
# its thread while the function it runs makes its own calls here. Cheroot keeps at most 10
# connections open by default and closes the rest after one response: the pollers, the
# functions' environments and the tests hold far more, all on loopback.
# One difference from moto's own request handler: an underscore in a header name reads as a dash
# (an S3 user-metadata key "a_b" is stored as "a-b"). The pipeline's metadata keys use dashes.
SERVER_THREADS = 64
KEEP_ALIVE_CONNECTIONS = 1000


def serve(app: Any, port: int, certificates: tls.TlsFiles | None = None) -> wsgi.Server:
    """Serve ``app`` on 127.0.0.1:``port`` (HTTPS with ``certificates``), in a daemon thread."""
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=SERVER_THREADS, timeout=60)
    server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
    if certificates is not None:
        server.ssl_adapter = BuiltinSSLAdapter(str(certificates.certificate), str(certificates.key))
    server.prepare()  # binds now: a port in use fails the start, not a thread
    threading.Thread(target=server.serve, name=f"http-{port}", daemon=True).start()
    return server


if __name__ == "__main__":
    sys.exit(main())
