"""One Lambda execution environment: a worker process running AWS's runtime interface client.

The worker is ``python -m awslambdaric <handler>``, the same client AWS's Python runtime uses,
started with the function's code, layers and environment, and connected to a Lambda Runtime API
(``/2018-06-01/runtime/...``) that this module serves on a loopback port of its own. Init has
its own 10 s budget; each invocation is bounded by the function's timeout, after which the
process is killed and the environment discarded, as Lambda does. A worker that dies during an
invocation (a crash, the kernel's OOM killer, or ``/_devstack/kill``) ends it the way Lambda
reports a crashed runtime: ``Runtime.ExitError``, "Runtime exited with error: signal: killed".
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

INIT_TIMEOUT_SECONDS = 10.0
_API = "/2018-06-01/runtime"
# How Lambda (a Go service) names the signals that end a runtime, in "signal: killed".
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGINT: "interrupt",
}


def exit_reason(returncode: int | None) -> str:
    """Lambda's words for how a runtime process ended: ``signal: killed``, ``exit status 1``."""
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            number = signal.Signals(-returncode)
        except ValueError:
            return f"signal: {-returncode}"
        return f"signal: {_SIGNAL_NAMES.get(number, number.name)}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str


@dataclass
class Result:
    """What an invocation returned, the way the Invoke API reports it."""

    request_id: str
    payload: bytes
    error: str | None = None  # None: success. Otherwise Unhandled, TimedOut, InitError, Throttled
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int = 0
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def failure(cls, request_id: str, error: str, error_type: str, message: str) -> Result:
        """A failed invocation, its payload in Lambda's ``{errorType, errorMessage}`` shape."""
        result = cls(request_id=request_id, payload=b"")
        result.fail(error, error_type, message)
        return result

    def fail(self, error: str, error_type: str, message: str) -> None:
        self.error = error
        self.payload = json.dumps({"errorType": error_type, "errorMessage": message}).encode()

    @property
    def ok(self) -> bool:
        return self.error is None

    def json(self) -> Any:
        try:
            return json.loads(self.payload or b"null")
        except ValueError:
            return None


class SandboxError(RuntimeError):
    """The environment could not start (init failed or timed out)."""


def _trace_id() -> str:
    epoch = f"{int(time.time()):08x}"
    return f"Root=1-{epoch}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


class Sandbox:
    def __init__(
        self,
        *,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        log: IO[bytes],
        function_arn: str,
        timeout_s: float,
    ) -> None:
        self._command = command
        self._cwd = cwd
        self._env = env
        self._log = log
        self._function_arn = function_arn
        self._timeout_s = timeout_s
        self._pending: queue.Queue[Invocation | None] = queue.Queue()
        self._results: dict[str, Result] = {}
        self._ready = threading.Event()
        self._init_error: bytes | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._kill_lock = threading.Lock()
        self.init_ms: float | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        env = {**self._env, "AWS_LAMBDA_RUNTIME_API": f"{host}:{port}"}
        started = time.monotonic()
        self._process = subprocess.Popen(
            self._command,
            cwd=self._cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        while not self._ready.wait(0.05):
            if self._init_error is not None or self._process.poll() is not None:
                break
            if time.monotonic() - started > INIT_TIMEOUT_SECONDS:
                break
        self.init_ms = (time.monotonic() - started) * 1000
        if not self._ready.is_set():
            detail = (self._init_error or b"").decode(errors="replace")
            exit_code = self._process.poll()
            self.kill()
            reason = (
                f"init failed: {detail}"
                if detail
                else f"runtime exited with status {exit_code} during init"
                if exit_code is not None
                else f"init did not finish within {INIT_TIMEOUT_SECONDS:.0f} s"
            )
            raise SandboxError(reason)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> bool:
        """SIGKILL the worker (its process group) and close its Runtime API. Safe to call from
        any thread, more than once; True if this call ended a running process."""
        with self._kill_lock:
            killed = False
            if self._process is not None and self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
                killed = True
            self._pending.put(None)  # release a runtime blocked in /next
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
            return killed

    # -- invocations ------------------------------------------------------------------------

    def invoke(self, payload: bytes, request_id: str | None = None) -> Result:
        request_id = request_id or str(uuid.uuid4())
        result = Result(request_id=request_id, payload=b"")
        self._results[request_id] = result
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + self._timeout_s * 1000)
        self._pending.put(
            Invocation(request_id, payload, deadline_ms, self._function_arn, _trace_id())
        )
        while not result.done.wait(0.05):
            if time.monotonic() - started >= self._timeout_s:
                message = f"Task timed out after {self._timeout_s:.2f} seconds"
                result.fail("TimedOut", "Sandbox.Timedout", message)
                break
            if not self.alive:
                reason = exit_reason(self._process.poll() if self._process else None)
                message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
                result.fail("Unhandled", "Runtime.ExitError", message)
                break
        result.duration_ms = (time.monotonic() - started) * 1000
        result.max_memory_mb = self._peak_memory_mb()
        self._results.pop(request_id, None)
        if result.error == "TimedOut" or not self.alive:
            self.kill()
        return result

    def _peak_memory_mb(self) -> int:
        if self._process is None:
            return 0
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return 0

    # -- the Runtime API --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class RuntimeApi(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = (
                True  # small request/response pairs: no 40 ms delayed-ACK stalls
            )

            def log_message(self, *args: Any) -> None:  # quiet: the function log is the log
                return

            def _reply(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                if self.path != f"{_API}/invocation/next":
                    self._reply(404)
                    return
                sandbox._ready.set()
                invocation = sandbox._pending.get()
                if invocation is None:  # shutting down; the worker may be gone already
                    with contextlib.suppress(OSError):
                        self._reply(410)
                    return
                self._reply(
                    200,
                    invocation.payload,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                        "Lambda-Runtime-Trace-Id": invocation.trace_id,
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.removeprefix(_API).strip("/").split("/")
                if parts == ["init", "error"]:
                    sandbox._init_error = body or b"init error"
                    self._reply(202)
                    return
                if (
                    len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2] in ("response", "error")
                ):
                    result = sandbox._results.get(parts[1])
                    if result is None:
                        self._reply(400, b'{"errorType":"InvalidRequestID"}')
                        return
                    result.payload = body
                    result.error = None if parts[2] == "response" else "Unhandled"
                    result.done.set()
                    self._reply(202)
                    return
                self._reply(404)

        return RuntimeApi
