"""``pip install .`` gives a package whose every Lambda handler imports.

The wheel is built by the repository's own build backend (pyproject.toml) from a copy of the
tree, so the build leaves nothing in the checkout, and installed without dependencies into a
fresh virtualenv. The dependencies (boto3, Powertools, Pillow...) come from this virtualenv's
site-packages through a ``.pth`` line: a path listed there is searched for modules, but the
``.pth`` files inside it are not run, so this virtualenv's editable install of
``media_pipeline`` stays out and every import below comes from the wheel (checked).

Marked ``must_run``: a skip (no pip, no index to fetch the build backend from) fails the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from tooling.functions import FUNCTIONS

from tests.support import LAMBDA_ENV

pytestmark = pytest.mark.must_run

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lambdas" / "media_pipeline"
# What the build reads: the project file, the readme it names, and the package directories.
BUILD_INPUTS = ("pyproject.toml", "README.md", "lambdas", "scripts")
PROBE = """
import importlib, json, sys
import media_pipeline
handler = importlib.import_module(sys.argv[1])
print(json.dumps({"package": media_pipeline.__file__, "handler": callable(handler.lambda_handler)}))
"""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built with pip from a copy of the tree."""
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    tree.mkdir()
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(tree)])
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv holding the wheel (and, by path, the dependencies)."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel)])
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    dependencies = sysconfig.get_path("purelib")
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(f"{dependencies}\n")
    return python


def test_the_wheel_holds_every_module_of_the_lambda_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("media_pipeline/")}
    sources = {
        f"media_pipeline/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.rglob("*.py")
    }
    assert sorted(sources - packed) == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_handler_imports_from_the_installed_wheel(
    installed: Path, function: str, tmp_path: Path
) -> None:
    env = {**LAMBDA_ENV, "POWERTOOLS_TRACE_DISABLED": "1", "PATH": "/usr/bin:/bin"}
    done = _run(
        # -I: neither the working directory nor PYTHONPATH is on the path, only site-packages
        [str(installed), "-I", "-c", PROBE, f"media_pipeline.handlers.{function}"],
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    probe = json.loads(done.stdout.splitlines()[-1])
    assert Path(probe["package"]).is_relative_to(installed.parents[1]), probe["package"]
    assert probe["handler"] is True
