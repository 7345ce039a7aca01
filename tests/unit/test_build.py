"""Packaging: each function carries only the project code it imports, reproducibly."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import LAMBDA_ENV

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "terraform" / "modules" / "pipeline"
spec = importlib.util.spec_from_file_location("build_script", ROOT / "scripts" / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules["build_script"] = build
spec.loader.exec_module(build)


def relative(paths):
    return {p.relative_to(build.SOURCE).as_posix() for p in paths}


def test_the_notifier_does_not_carry_the_image_stack():
    files = relative(build.function_sources("media_pipeline.handlers.notifier"))
    assert "media_pipeline/handlers/notifier.py" in files
    assert "media_pipeline/notifications.py" in files
    assert "media_pipeline/config/notifier.py" in files
    assert not any(f.startswith("media_pipeline/imaging/") for f in files)
    assert "media_pipeline/handlers/thumbnail.py" not in files
    # it formats stream images (values.to_plain) but never touches the table itself
    assert "media_pipeline/values.py" in files
    assert "media_pipeline/media_store.py" not in files
    assert "media_pipeline/item_writes.py" not in files


def test_the_thumbnail_function_carries_the_engine_and_every_package_init():
    files = relative(build.function_sources("media_pipeline.handlers.thumbnail"))
    assert "media_pipeline/imaging/__init__.py" in files
    assert {
        "media_pipeline/__init__.py",
        "media_pipeline/handlers/__init__.py",
        "media_pipeline/config/__init__.py",
        "media_pipeline/pipeline/__init__.py",
    } <= files
    assert {"media_pipeline/pipeline/flow.py", "media_pipeline/pipeline/halves.py"} <= files
    assert "media_pipeline/handlers/metadata.py" not in files


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    out = tmp_path_factory.mktemp("packages")
    build.build_functions(out, f"python{sys.version_info.major}.{sys.version_info.minor}")
    return out


# Importing a handler from its extracted zip alone (no site: the editable install of the project
# is invisible); third-party libraries come from the layers, here this interpreter's own.
IMPORT_FROM_ZIP = """
import sys
sys.path[:0] = [sys.argv[1], *sys.argv[2:]]
import media_pipeline.handlers.{function} as handler
assert handler.__file__.startswith(sys.argv[1]), handler.__file__
assert callable(handler.lambda_handler)
"""


@pytest.mark.parametrize("function", build.FUNCTIONS)
def test_every_function_imports_from_its_own_zip_alone(function, packages, tmp_path):
    with zipfile.ZipFile(packages / f"{function}.zip") as archive:
        archive.extractall(tmp_path)
    done = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_FROM_ZIP.format(function=function), str(tmp_path)]
        + [p for p in site.getsitepackages() if Path(p).is_dir()],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**LAMBDA_ENV, "LAMBDA_TASK_ROOT": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_zips_depend_only_on_names_and_contents(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    build.write_zip({"b.txt": tmp_path / "b.txt", "a.txt": tmp_path / "a.txt"}, first)
    (tmp_path / "a.txt").touch()  # a newer mtime must not matter
    build.write_zip({"a.txt": tmp_path / "a.txt", "b.txt": tmp_path / "b.txt"}, second)

    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["a.txt", "b.txt"]
        assert {i.date_time for i in archive.infolist()} == {build.EPOCH}


def test_function_packages_are_reproducible(tmp_path):
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    build.build_functions(tmp_path / "one", runtime)
    build.build_functions(tmp_path / "two", runtime)
    for function in build.FUNCTIONS:
        one = (tmp_path / "one" / f"{function}.zip").read_bytes()
        assert one == (tmp_path / "two" / f"{function}.zip").read_bytes(), function
        with zipfile.ZipFile(tmp_path / "one" / f"{function}.zip") as archive:
            names = archive.namelist()
        # hash-checked bytecode rides along: /var/task is read-only on Lambda
        assert any(
            n.endswith(f".cpython-{sys.version_info.major}{sys.version_info.minor}.pyc")
            for n in names
        )


def test_the_reconciler_does_not_carry_the_image_stack():
    # It runs with the Powertools layer only: an import of Pillow would fail its cold start.
    files = relative(build.function_sources("media_pipeline.handlers.reconciler"))
    assert "media_pipeline/reconcile.py" in files
    assert not any(f.startswith("media_pipeline/imaging/") for f in files)


def fake_packages(out: Path, function: str, layers: dict[str, dict[str, bytes]]) -> None:
    """A function zip and layer zips as `make build` lays them out, with the given files."""
    build.write_zip(
        {"pkg/handler.py": b"code", "shared.py": b"function's"}, out / f"{function}.zip"
    )
    for layer, files in layers.items():
        build.write_zip(
            {f"python/{name}": data for name, data in files.items()}, out / f"{layer}.zip"
        )


def test_a_bundle_is_the_function_with_its_layers_contents_at_the_top(tmp_path, monkeypatch):
    monkeypatch.setitem(build.FUNCTION_LAYERS, "thumbnail", ("pillow", "powertools"))
    fake_packages(
        tmp_path,
        "thumbnail",
        {
            "pillow": {"PIL/__init__.py": b"pil", "both.py": b"pillow's"},
            "powertools": {"aws_lambda_powertools/__init__.py": b"pt", "both.py": b"powertools'"},
        },
    )
    # a layer file outside python/ is not on Lambda's path, so it stays out
    with zipfile.ZipFile(tmp_path / "pillow.zip", "a") as archive:
        archive.writestr("bin/tool", b"x")
    bundled = build.bundle_function(tmp_path, "thumbnail")

    assert bundled == tmp_path / "bundled" / "thumbnail.zip"
    with zipfile.ZipFile(bundled) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert files == {
        "PIL/__init__.py": b"pil",
        "aws_lambda_powertools/__init__.py": b"pt",
        "both.py": b"powertools'",  # a later layer overwrites an earlier one, as in /opt
        "pkg/handler.py": b"code",
        "shared.py": b"function's",
    }


def test_the_function_wins_over_a_layer_and_bundles_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.setitem(build.FUNCTION_LAYERS, "api", ("powertools",))
    fake_packages(tmp_path, "api", {"powertools": {"shared.py": b"layer's"}})
    first = build.bundle_function(tmp_path, "api").read_bytes()
    second = build.bundle_function(tmp_path, "api").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "bundled" / "api.zip") as archive:
        assert archive.read("shared.py") == b"function's"


def test_a_bundle_over_lambdas_unzipped_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(build.FUNCTION_LAYERS, "api", ("powertools",))
    fake_packages(tmp_path, "api", {"powertools": {"big.bin": b"\0" * 1000}})
    monkeypatch.setattr(build, "UNZIPPED_LIMIT", 999)
    with pytest.raises(SystemExit, match="over Lambda's"):
        build.bundle_function(tmp_path, "api")
    assert not (tmp_path / "bundled" / "api.zip").exists()


def terraform_functions() -> dict[str, dict[str, str]]:
    """Each Terraform module block that deploys a function zip: its zip, handler and layers, by
    module name (terraform/modules/pipeline/*.tf)."""
    sources = "\n".join(p.read_text() for p in sorted(PIPELINE.glob("*.tf")))
    found = {}
    for name, body in re.findall(r'^module "(\w+)" \{\n(.*?)^\}', sources, re.M | re.S):
        zip_file = re.search(r'zip_file\s*=\s*"\$\{local\.function_dir\}/(\w+)\.zip"', body)
        if zip_file:
            found[name] = {
                "zip": zip_file.group(1),
                "handler": re.search(r'handler\s*=\s*"([\w.]+)"', body).group(1),
                "layers": re.search(r"layers\s*=\s*([\w.]+)", body).group(1),
            }
    return found


def test_the_terraform_deploys_exactly_the_listed_functions_with_their_layers():
    # lambdas/functions.json is the list (build.FUNCTIONS and FUNCTION_LAYERS); Terraform cannot
    # iterate modules, so it names each function by hand: it must name the same, alike.
    layers_of = {
        "local.image_layers": ("pillow", "powertools"),
        "local.powertools_layers": ("powertools",),
        "local.signing_layers": ("powertools", "signing"),
    }
    deployed = terraform_functions()
    assert sorted(deployed) == sorted(build.FUNCTIONS)
    for name, function in deployed.items():
        assert function["zip"] == name
        assert function["handler"] == f"media_pipeline.handlers.{name}.lambda_handler"
    # the layers bundles carry (scripts/build.py) are those Terraform gives each function
    assert {name: layers_of[f["layers"]] for name, f in deployed.items()} == build.FUNCTION_LAYERS
    # every listed function has a handler module, and every handler module is listed
    handlers = {p.stem for p in (build.SOURCE / "media_pipeline" / "handlers").glob("*.py")}
    assert handlers - {"__init__"} == set(build.FUNCTIONS)


def test_the_monitoring_watches_every_listed_function():
    text = (PIPELINE / "monitoring.tf").read_text()
    block = re.search(r"^  functions = \{\n(.*?)^  \}", text, re.M | re.S)
    assert block, "monitoring.tf: no locals.functions"
    watched = dict(
        re.findall(r"^\s*(\w+)\s*=\s*module\.(\w+)\.function_name$", block.group(1), re.M)
    )
    assert watched == {name: name for name in build.FUNCTIONS}
