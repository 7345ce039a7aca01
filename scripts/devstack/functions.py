"""Deployed functions as the local runtime sees them: config from the Lambda API, code by hash.

The emulator's Lambda API says what is deployed (handler, runtime, timeout, memory, environment,
layers, and the SHA-256 of the code). moto cannot hand the zip back, so the runtime finds the
package with that exact hash among the build outputs: it runs precisely what Terraform deployed,
or refuses to run it. Packages are unpacked once, content-addressed, under ``.local/lambda``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tooling.pythons import HOST_ARCH, find_python, pip_install_for, runtime_version

from devstack.sandbox import Result, Sandbox, SandboxError


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    runtime: str
    timeout: int
    memory: int
    architecture: str
    code_sha256: str
    layer_arns: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    reserved_concurrency: int | None
    role: str = ""  # the execution role's ARN
    tracing: str = "PassThrough"  # X-Ray: Active or PassThrough

    @classmethod
    def from_api(cls, config: dict[str, Any], reserved_concurrency: int | None) -> FunctionSpec:
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            runtime=config["Runtime"],
            timeout=int(config.get("Timeout", 3)),
            memory=int(config.get("MemorySize", 128)),
            architecture=(config.get("Architectures") or ["x86_64"])[0],
            code_sha256=config["CodeSha256"],
            layer_arns=tuple(layer["Arn"] for layer in config.get("Layers", [])),
            environment=tuple(sorted(config.get("Environment", {}).get("Variables", {}).items())),
            reserved_concurrency=reserved_concurrency,
            role=config.get("Role", ""),
            tracing=(config.get("TracingConfig") or {}).get("Mode") or "PassThrough",
        )


def sha256_b64(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


class CodeStore:
    """Finds deployment packages by the hash Lambda reports and unpacks them once."""

    def __init__(self, search_dirs: list[Path], cache_dir: Path) -> None:
        self._search_dirs = search_dirs
        self._cache_dir = cache_dir
        self._by_hash: dict[str, Path] = {}
        self._seen: dict[Path, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def _scan(self) -> None:
        for directory in self._search_dirs:
            for path in directory.rglob("*.zip"):
                stat = path.stat()
                if self._seen.get(path) != (stat.st_mtime, stat.st_size):
                    self._seen[path] = (stat.st_mtime, stat.st_size)
                    self._by_hash[sha256_b64(path)] = path

    def package(self, code_sha256: str) -> Path:
        with self._lock:
            if code_sha256 not in self._by_hash:
                self._scan()
            path = self._by_hash.get(code_sha256)
        if path is None:
            dirs = ", ".join(str(d) for d in self._search_dirs)
            raise FileNotFoundError(
                f"no package with SHA-256 {code_sha256} under {dirs}: the deployed code was not "
                "built here (run `make build`, then `make up`)"
            )
        return path

    def unpack(self, code_sha256: str) -> Path:
        """The package's files, unpacked under a directory named for its hash."""
        target = (
            self._cache_dir
            / "code"
            / base64.b16encode(base64.b64decode(code_sha256)).decode().lower()
        )
        if not target.is_dir():
            package = self.package(code_sha256)
            tmp = target.with_name(target.name + f".tmp{os.getpid()}-{threading.get_ident()}")
            with zipfile.ZipFile(package) as archive:
                archive.extractall(tmp)
            try:
                tmp.rename(target)
            except OSError:  # another thread unpacked it first
                shutil.rmtree(tmp, ignore_errors=True)
        return target


class RuntimeLibraries:
    """What AWS's Python runtime provides to every function (awslambdaric, boto3), per version.

    Installed with pip from ``requirements/lambda-runtime.txt`` into ``.local/runtime/<runtime>``
    the first time a function of that runtime runs.
    """

    def __init__(self, requirements: Path, cache_dir: Path) -> None:
        self._requirements = requirements
        self._cache_dir = cache_dir
        self._lock = threading.Lock()

    def path(self, runtime: str) -> Path:
        target = self._cache_dir / "runtime" / runtime
        stamp = target / ".requirements"
        wanted = self._requirements.read_text()
        with self._lock:
            if stamp.is_file() and stamp.read_text() == wanted:
                return target
            shutil.rmtree(target, ignore_errors=True)
            pip_install_for(runtime, self._requirements, target)
            stamp.write_text(wanted)
        return target


class FunctionPool:
    """The execution environments of one function: reused while warm, at most ``capacity``."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        layer_hashes: tuple[str, ...],
        code: CodeStore,
        runtime_libs: RuntimeLibraries,
        base_env: dict[str, str],
        log: IO[bytes],
        capacity: int,
        region: str,
        credentials: dict[str, str] | None = None,
        on_environment_start: Callable[[FunctionSpec, str], None] | None = None,
    ) -> None:
        self.spec = spec
        # the execution role's temporary credentials (devstack/iam.py), or the base env's
        self._credentials = credentials or {}
        self._on_environment_start = on_environment_start
        self._layer_hashes = layer_hashes
        self._code = code
        self._runtime_libs = runtime_libs
        self._base_env = base_env
        self._log = log
        self._region = region
        self.capacity = (
            capacity
            if spec.reserved_concurrency is None
            else min(capacity, spec.reserved_concurrency)
        )
        self._idle: list[Sandbox] = []
        self._running: set[Sandbox] = set()  # environments in an invocation
        self._busy = 0
        self._retired = False
        self._cond = threading.Condition()
        self.invocations = 0
        self.errors = 0
        self.cold_starts = 0

    # -- environments -----------------------------------------------------------------------

    def _command_and_env(self) -> tuple[list[str], Path, dict[str, str]]:
        spec = self.spec
        version = runtime_version(spec.runtime)
        python = find_python(version)
        if python is None:
            raise SandboxError(
                f"{spec.name} uses {spec.runtime}, but no python{version} interpreter was found "
                f"(install it, or set LAMBDA_PYTHON_{version.replace('.', '_')} to one)"
            )
        if spec.architecture != HOST_ARCH:
            raise SandboxError(
                f"{spec.name} is built for {spec.architecture}; this machine runs {HOST_ARCH}. "
                "Deploy the local stack with lambda_architecture matching the host."
            )
        task = self._code.unpack(spec.code_sha256)
        # Lambda unpacks layers into /opt in order, later ones overwriting earlier files; here
        # each layer keeps its own directory and later layers come first on the path.
        python_path = [str(task)]
        for sha in reversed(self._layer_hashes):
            layer = self._code.unpack(sha) / "python"
            python_path += [str(layer / "lib" / f"python{version}" / "site-packages"), str(layer)]
        python_path.append(str(self._runtime_libs.path(spec.runtime)))
        env = {
            **self._base_env,
            **self._credentials,
            **dict(spec.environment),
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(task),
            "LAMBDA_RUNTIME_DIR": python_path[-1],
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{spec.code_sha256[:8]}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            "TZ": ":UTC",
            # Not set on AWS: tags the function's AWS requests (User-Agent ``app/<name>``) so
            # that the stack's usage recorder (usage.py) counts them as the function's.
            "AWS_SDK_UA_APP_ID": spec.name,
        }
        # -S: like Lambda, nothing from this machine's site-packages is importable.
        return [str(python), "-S", "-m", "awslambdaric", spec.handler], task, env

    def _new_sandbox(self) -> Sandbox:
        command, cwd, env = self._command_and_env()
        if self._on_environment_start is not None:  # e.g. authorise its log stream
            self._on_environment_start(self.spec, env["AWS_LAMBDA_LOG_STREAM_NAME"])
        sandbox = Sandbox(
            command=command,
            cwd=cwd,
            env=env,
            log=self._log,
            function_arn=self.spec.arn,
            timeout_s=self.spec.timeout,
        )
        sandbox.start()
        self.cold_starts += 1
        return sandbox

    def invoke(self, payload: bytes, request_id: str | None = None) -> Result:
        with self._cond:
            if self.capacity <= 0:
                return Result.failure(
                    request_id or "", "Throttled", "TooManyRequestsException", "Rate Exceeded."
                )
            while not self._idle and self._busy >= self.capacity:
                self._cond.wait()
            sandbox = self._idle.pop() if self._idle else None
            self._busy += 1
        if sandbox is not None and not sandbox.alive:  # killed (or died) while idle: replaced
            sandbox.kill()
            sandbox = None
        init_ms = None
        try:
            if sandbox is None:
                try:
                    sandbox = self._new_sandbox()
                except (SandboxError, OSError, subprocess.CalledProcessError) as error:
                    self.errors += 1
                    return Result.failure(
                        request_id or "", "InitError", "Runtime.InitError", str(error)
                    )
                init_ms = sandbox.init_ms
            with self._cond:
                self._running.add(sandbox)
            result = sandbox.invoke(payload, request_id)
            result.init_ms = init_ms
            self.invocations += 1
            if not result.ok:
                self.errors += 1
            return result
        finally:
            with self._cond:
                self._busy -= 1
                self._running.discard(sandbox)
                if sandbox is not None and sandbox.alive and not self._retired:
                    self._idle.append(sandbox)
                elif sandbox is not None:
                    sandbox.kill()
                self._cond.notify()

    def kill(self, include_idle: bool = False) -> int:
        """SIGKILL the environments in an invocation (and the idle ones, with ``include_idle``),
        the way the Lambda service ends a crashed or out-of-memory environment: the invocation
        in flight fails with ``Runtime.ExitError``, and the next one starts a new environment.
        Returns how many were killed."""
        with self._cond:
            doomed = list(self._running)
            if include_idle:
                doomed += self._idle
                self._idle = []
        return sum(sandbox.kill() for sandbox in doomed)

    def retire(self) -> None:
        """Stop the idle environments now, the busy ones when they finish."""
        with self._cond:
            self._retired = True
            idle, self._idle = self._idle, []
        for sandbox in idle:
            sandbox.kill()

    @property
    def environments(self) -> dict[str, int]:
        with self._cond:
            return {"idle": len(self._idle), "busy": self._busy, "capacity": self.capacity}
