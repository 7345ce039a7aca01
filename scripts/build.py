#!/usr/bin/env python3
"""Build the Lambda deployment packages, reproducibly.

    python scripts/build.py functions --runtime python3.13 --arch arm64 [--out build]
    python scripts/build.py layer pillow --runtime python3.13 --arch arm64 [--out build]

Everything for one runtime and architecture goes to ``build/<runtime>-<arch>/``, where Terraform
looks for it (variables lambda_runtime and lambda_architecture).

* A function zip holds project code only: the handler module and the ``media_pipeline`` modules it
  imports, found by following its imports (so the notifier does not carry the image code).
* A layer zip holds ``python/`` with the pinned requirements of ``layers/<name>/``, installed by
  pip from wheels for the target Python version and architecture (``--platform`` /
  ``--only-binary``, ``--no-deps``: the requirements file is the layer's complete lock), the
  way Lambda will load them from ``/opt/python``.
* Both get hash-based ``.pyc`` files when an interpreter of the target version is available:
  ``/var/task`` and ``/opt`` are read-only on Lambda, so without them every cold start compiles.
* Same inputs, same bytes: entries sorted, timestamps and permissions fixed. Terraform compares
  ``filebase64sha256`` and redeploys only what changed.
* ``bundle`` makes ``bundled/<function>.zip``: the function zip with the contents of its layers'
  ``python/`` directories at the top, for a Lambda that does not apply layers (LocalStack's
  community edition; Terraform variable ``bundle_layers``). The function's own files win over a
  layer's, as ``/var/task`` comes before ``/opt/python`` on Lambda's path. Layer ``.pyc`` files
  keep ``/opt/python`` as their source path (only tracebacks show it). It refuses a bundle over
  Lambda's limit on a function's unzipped size (250 MB, layers included).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from tooling.functions import FUNCTION_LAYERS, FUNCTIONS
from tooling.pythons import find_python, pip_install_for, runtime_version

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "lambdas"
PACKAGE = "media_pipeline"
EPOCH = (1980, 1, 1, 0, 0, 0)
MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
# Lambda's quota: a function and all its layers, unzipped (the whole of /var/task and /opt).
UNZIPPED_LIMIT = 250 * 1024 * 1024


def module_file(module: str) -> Path | None:
    base = SOURCE.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of the tree except those under ``if TYPE_CHECKING:`` (never run)."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        todo += ast.iter_child_nodes(node)
    return nodes


def imported_modules(path: Path) -> set[str]:
    """The project modules a source file imports at run time (absolute imports of the
    package; imports only for type checkers are left out)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == PACKAGE
        ):
            found.add(node.module)
            # "from media_pipeline import imaging" imports a submodule, not a name
            found |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if module_file(f"{node.module}.{a.name}")
            }
    return found


def function_sources(handler_module: str) -> list[Path]:
    """Every file the handler needs: its import closure plus each package's ``__init__``."""
    todo, seen = [handler_module], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        path = module_file(module)
        if path is None:
            raise SystemExit(f"{handler_module} imports {module}, which is not in {SOURCE}")
        todo += sorted(imported_modules(path))
        if path.name == "__init__.py":
            # a package imported as a whole brings its own submodules' imports along
            todo += sorted(imported_modules(path))
    return sorted({module_file(m) for m in seen})  # type: ignore[type-var]


def write_zip(files: dict[str, Path | bytes], destination: Path) -> None:
    """A zip whose bytes depend only on the files' names and contents (a path or the bytes)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = files[name]
            archive.writestr(
                info, data if isinstance(data, bytes) else data.read_bytes(), compresslevel=9
            )
    tmp.replace(destination)


def compile_tree(tree: Path, runtime: str, deployed_at: str) -> bool:
    """Add unchecked-hash .pyc files made by an interpreter of the runtime's version.

    ``deployed_at`` is where Lambda will unpack the tree (/var/task, /opt/python): recorded as the
    files' path in tracebacks instead of this build's temporary directory, which would make the
    bytes differ from build to build.
    """
    python = find_python(runtime_version(runtime))
    if python is None:
        print(f"  no {runtime} interpreter here: shipping sources only (slower cold starts)")
        return False
    subprocess.run(
        # One process: marshal's output depends on what was compiled before in the same
        # interpreter, so parallel workers would make the bytes vary from run to run.
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(tree),
            "-p",
            deployed_at,
            str(tree),
        ],
        check=True,
    )
    return True


def tree_files(tree: Path) -> dict[str, Path]:
    return {p.relative_to(tree).as_posix(): p for p in tree.rglob("*") if p.is_file()}


def build_functions(out: Path, runtime: str) -> None:
    """One zip per function; ``out`` is the runtime-and-architecture directory."""
    for function in FUNCTIONS:
        handler = f"{PACKAGE}.handlers.{function}"
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp)
            for source in function_sources(handler):
                target = tree / source.relative_to(SOURCE)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            compile_tree(tree, runtime, "/var/task")
            destination = out / f"{function}.zip"
            write_zip(tree_files(tree), destination)
        print(f"  {destination}  ({destination.stat().st_size} bytes)")


def build_layer(name: str, out: Path, runtime: str, arch: str) -> None:
    requirements = ROOT / "layers" / name / "requirements.txt"
    if not requirements.is_file():
        raise SystemExit(f"no layer called {name!r}: {requirements} does not exist")
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[arch]
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{machine}")]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        pip_install_for(
            runtime,
            requirements,
            tree / "python",
            "--no-compile",
            "--no-deps",
            "--implementation",
            "cp",
            *platforms,
        )
        # Console scripts carry this machine's interpreter path and are useless in a layer.
        shutil.rmtree(tree / "python" / "bin", ignore_errors=True)
        compile_tree(tree / "python", runtime, "/opt/python")
        destination = out / f"{name}.zip"
        write_zip(tree_files(tree), destination)
    size_mb = destination.stat().st_size / 1e6
    print(f"  {destination}  ({size_mb:.1f} MB zipped)")


def zip_contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}


def bundle_function(out: Path, function: str) -> Path:
    """``out/bundled/<function>.zip``: the function's zip with its layers' contents inside."""
    files: dict[str, bytes] = {}
    for layer in FUNCTION_LAYERS[function]:  # later layers overwrite earlier files, as in /opt
        for name, data in zip_contents(out / f"{layer}.zip").items():
            if name.startswith("python/"):
                files[name.removeprefix("python/")] = data
    files |= zip_contents(out / f"{function}.zip")  # /var/task comes first on the path
    unzipped = sum(len(data) for data in files.values())
    if unzipped > UNZIPPED_LIMIT:
        raise SystemExit(
            f"{function} with its layers is {unzipped / 2**20:.0f} MiB unzipped, over Lambda's "
            f"{UNZIPPED_LIMIT / 2**20:.0f} MiB"
        )
    destination = out / "bundled" / f"{function}.zip"
    write_zip(dict(files), destination)
    zipped = destination.stat().st_size
    print(f"  {destination}  ({zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped)")
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--runtime", default="python3.13", help="Lambda runtime, e.g. python3.13")
    parser.add_argument("--arch", choices=("arm64", "x86_64"), default="arm64")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("functions", help="one zip per function (project code only)")
    layer = sub.add_parser("layer", help="a dependency layer from layers/<name>/requirements.txt")
    layer.add_argument("name")
    sub.add_parser(
        "bundle", help="bundled/<function>.zip: each function with its layers inside (no layers)"
    )
    args = parser.parse_args()
    runtime_version(args.runtime)  # validates the name
    out = args.out.resolve() / f"{args.runtime}-{args.arch}"
    if args.command == "functions":
        build_functions(out, args.runtime)
    elif args.command == "bundle":
        for function in FUNCTIONS:
            bundle_function(out, function)
    else:
        build_layer(args.name, out, args.runtime, args.arch)


if __name__ == "__main__":
    main()
