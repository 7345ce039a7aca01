"""Find a CPython interpreter of a given version (python3.13 for a function's runtime, say).

Looks at PATH first, then at pyenv's versions (whose shims refuse versions that are installed
but not selected), then at an explicit override: ``LAMBDA_PYTHON_3_13=/path/to/python``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path


def runtime_version(runtime: str) -> str:
    """``python3.13`` -> ``3.13``."""
    if not runtime.startswith("python3."):
        raise ValueError(f"not a Python Lambda runtime: {runtime!r}")
    return runtime.removeprefix("python")


def host_runtime() -> str:
    """The Lambda runtime name matching the interpreter running this code."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


# The Lambda architecture name (x86_64 or arm64) of this machine's CPU.
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine()
)


@cache
def find_python(version: str) -> Path | None:
    """An interpreter whose ``major.minor`` is ``version``, or None."""
    override = os.environ.get(f"LAMBDA_PYTHON_{version.replace('.', '_')}")
    candidates: list[str | Path] = [override] if override else []
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidates.append(getattr(sys, "_base_executable", sys.executable))
    found = shutil.which(f"python{version}")
    if found:
        candidates.append(found)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(
        (pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True
    )
    for candidate in candidates:
        if _reports_version(str(candidate), version):
            return Path(candidate)
    return None


def _reports_version(executable: str, version: str) -> bool:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def pip_install_for(runtime: str, requirements: Path, target: Path, *options: str) -> None:
    """Install ``requirements`` into ``target`` for a Lambda runtime's Python, with this
    interpreter's pip: binary wheels only, so what lands there is what that runtime can import."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            runtime_version(runtime),
            *options,
            "--target",
            str(target),
            "--requirement",
            str(requirements),
        ],
        check=True,
    )
