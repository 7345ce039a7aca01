"""``make plan-check``: what a change of the Terraform does to a production deployment, without AWS.

The production example (``terraform/envs/prod.tfvars.example``) is planned twice from an empty
state: with the Terraform of a base git ref (``--base``, default ``PLAN_CHECK_BASE`` or
``main``: the release a deployment runs) and with the working tree's production root
(``terraform/envs/aws``). Every resource of the base plan is followed through the working
tree's ``moved`` blocks to its new address, and the two planned values compared. What is left is
what a ``terraform plan`` of a deployment made from the base would show beyond moves: resources
created, destroyed (nothing moves them), or changed (attributes that differ), and outputs whose
names or values differ.

Both plans use the same packages (``build/``) and the same variables, so only the
configuration is compared. They run against a moto server started on loopback for the purpose
(the provider needs an account id from STS; nothing is created): the base Terraform's root is
given the emulator the way it accepts one (an ``aws_endpoint_url`` variable before the envs/
roots existed, else a provider override file), the working tree's through an override file
(``terraform.staged_root``), so the production root itself holds no emulator setting.

Terraform resolves the moves itself only against a real state; this check follows them the way
Terraform does (a module call or a resource without an index moves with all its instances;
chains are followed). ``make plan ENV=<env>`` then shows Terraform's own verdict on the real
state: the same moves, ``0 to add, 0 to change, 0 to destroy``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling import terraform
from tooling.pythons import HOST_ARCH, host_runtime

PROD_EXAMPLE = terraform.ENVS_DIR / "prod.tfvars.example"
_MOVED = re.compile(r"^moved\s*\{\s*from\s*=\s*(\S+)\s+to\s*=\s*(\S+)\s*\}", re.M)
_INDEX = re.compile(r"\[[^\]]*\]$")


# ---------------------------------------------------------------------------------------------
# moved blocks
# ---------------------------------------------------------------------------------------------


def moved_statements(root: Path, configuration: dict[str, Any]) -> list[tuple[str, str]]:
    """Every ``moved`` block of the root module ``root`` and of the modules it calls (as
    ``terraform show -json`` lists their calls), as absolute (from, to) addresses."""
    statements: list[tuple[str, str]] = []

    def visit(directory: Path, prefix: str, module: dict[str, Any]) -> None:
        for path in sorted(directory.glob("*.tf")):
            for source, target in _MOVED.findall(path.read_text()):
                statements.append((prefix + source, prefix + target))
        for name, call in module.get("module_calls", {}).items():
            source = call.get("source", "")
            if source.startswith(("./", "../")):
                visit((directory / source).resolve(), f"{prefix}module.{name}.", call["module"])

    visit(root, "", configuration.get("root_module", {}))
    return statements


def _matches(address: str, source: str) -> str | None:
    """The rest of ``address`` after ``source`` if the move ``source`` covers it, else None:
    the address itself, what is inside a module instance, and, for a resource or module call
    named without an index, every instance of it."""
    if address == source:
        return ""
    if address.startswith(source + "."):
        return address[len(source) :]
    if not _INDEX.search(source) and address.startswith(source + "["):
        rest = address[len(source) :]
        closing = rest.index("]") + 1
        if closing == len(rest) or rest[closing] == ".":
            return rest
    return None


def follow(address: str, statements: list[tuple[str, str]]) -> str:
    """Where ``address`` ends up after the moves (chains followed; at most one per step)."""
    seen = {address}
    while True:
        for source, target in statements:
            if source == target:
                continue
            rest = _matches(address, source)
            if rest is None:
                continue
            if _INDEX.search(target) and not _INDEX.search(source) and rest:
                continue  # resource -> one instance: moves only the instance without a key
            address = target + rest
            break
        else:
            return address
        if address in seen:
            raise ValueError(f"moved blocks loop through {address}")
        seen.add(address)


# ---------------------------------------------------------------------------------------------
# comparing two plans
# ---------------------------------------------------------------------------------------------


@dataclass
class Difference:
    moved: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    # For a changed attribute made of named blocks (a table's indexes, say): which names.
    details: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0
    # Data sources (policy documents, lookups) added, removed or read with other inputs: a
    # resource built from one (a bucket or role policy) changes with it, even where its own
    # planned value is only known after apply.
    data_created: list[str] = field(default_factory=list)
    data_destroyed: list[str] = field(default_factory=list)
    data_changed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def none(self) -> bool:
        return not (
            self.created
            or self.destroyed
            or self.changed
            or self.outputs
            or self.data_created
            or self.data_destroyed
            or self.data_changed
        )


def _differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The top-level attributes whose planned value (or unknown-ness) differs."""
    names = set()
    for part in ("after", "after_unknown", "after_sensitive"):
        before, after = old.get(part) or {}, new.get(part) or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            if before != after:
                names.add(f"({part})")
            continue
        names |= {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(names)


def _named_blocks(old: Any, new: Any) -> str | None:
    """``+ added; - removed; ~ changed`` names, for two lists of blocks that have a ``name``."""

    def by_name(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, list) or not all(
            isinstance(v, dict) and isinstance(v.get("name"), str) for v in value
        ):
            return None
        return {v["name"]: v for v in value}

    before, after = by_name(old), by_name(new)
    if before is None or after is None:
        return None
    parts = [
        f"{sign} {', '.join(sorted(names))}"
        for sign, names in (
            ("+", after.keys() - before.keys()),
            ("-", before.keys() - after.keys()),
            ("~", {n for n in before.keys() & after.keys() if before[n] != after[n]}),
        )
        if names
    ]
    return "; ".join(parts) or None


def compare(
    base: dict[str, Any], new: dict[str, Any], statements: list[tuple[str, str]]
) -> Difference:
    old_resources = terraform.managed_changes(base)
    new_resources = terraform.managed_changes(new)
    difference = Difference()
    reached = set()
    for address, change in sorted(old_resources.items()):
        target = follow(address, statements)
        if target not in new_resources:
            difference.destroyed.append(address)
            continue
        reached.add(target)
        if target != address:
            difference.moved[address] = target
        attributes = _differing(change, new_resources[target])
        if attributes:
            difference.changed[target] = attributes
            before, after = change.get("after") or {}, new_resources[target].get("after") or {}
            named = {a: _named_blocks(before.get(a), after.get(a)) for a in attributes}
            if any(named.values()):
                difference.details[target] = {a: d for a, d in named.items() if d}
        elif target == address:
            difference.unchanged += 1
    difference.created = sorted(set(new_resources) - reached)

    _compare_data(terraform.data_reads(base), terraform.data_reads(new), statements, difference)
    old_outputs, new_outputs = base.get("output_changes", {}), new.get("output_changes", {})
    for name in sorted(old_outputs.keys() | new_outputs.keys()):
        if name not in new_outputs:
            difference.outputs[name] = "removed"
        elif name not in old_outputs:
            difference.outputs[name] = "added"
        elif _differing(old_outputs[name], new_outputs[name]):
            difference.outputs[name] = "value differs"
    return difference


def _compare_data(
    old: dict[str, Any],
    new: dict[str, Any],
    statements: list[tuple[str, str]],
    difference: Difference,
) -> None:
    reached = set()
    for address, change in sorted(old.items()):
        target = follow(address, statements)
        if target not in new:
            difference.data_destroyed.append(address)
            continue
        reached.add(target)
        attributes = _differing(change, new[target])
        if attributes:
            difference.data_changed[target] = attributes
    difference.data_created = sorted(set(new) - reached)


def report(difference: Difference, base_label: str, new_label: str) -> str:
    lines = [
        f"production example ({PROD_EXAMPLE.relative_to(terraform.ROOT)}):",
        f"  {base_label}  ->  {new_label}",
        f"  {len(difference.moved)} moved, {difference.unchanged} unchanged in place, "
        f"{len(difference.created)} to add, {len(difference.changed)} to change, "
        f"{len(difference.destroyed)} to destroy; outputs: "
        + (", ".join(f"{k} {v}" for k, v in difference.outputs.items()) or "same names and values"),
    ]
    if difference.moved:
        # Most moves only put an address inside a module: one line per module, not per resource.
        into: dict[str, int] = {}
        other = {}
        for source, target in difference.moved.items():
            prefix = target[: len(target) - len(source)]
            if target.endswith(source) and prefix.endswith("."):
                into[prefix[:-1]] = into.get(prefix[:-1], 0) + 1
            else:
                other[source] = target
        lines.append("moved (moved blocks; nothing is replaced):")
        lines += [f"  {n} resources into {m}, each under its old address" for m, n in into.items()]
        lines += [f"  {a}  ->  {b}" for a, b in other.items()]
    if difference.created:
        lines.append("to add:")
        lines += [f"  + {a}" for a in difference.created]
    if difference.destroyed:
        lines.append("to destroy:")
        lines += [f"  - {a}" for a in difference.destroyed]
    if difference.changed:
        lines.append("to change (attributes):")
        for address, attributes in difference.changed.items():
            lines.append(f"  ~ {address}: {', '.join(attributes)}")
            details = difference.details.get(address, {})
            lines += [f"      {name}: {detail}" for name, detail in details.items()]
    if difference.data_created or difference.data_destroyed or difference.data_changed:
        lines.append(
            "data read (policy documents, lookups): what resources built from them change with"
        )
        lines += [f"  + {a}" for a in difference.data_created]
        lines += [f"  - {a}" for a in difference.data_destroyed]
        lines += [f"  ~ {a}: {', '.join(n)}" for a, n in difference.data_changed.items()]
    lines.append(
        "no change beyond the moves" if difference.none else "CHANGES beyond the moves (above)"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# running it
# ---------------------------------------------------------------------------------------------


@contextmanager
def emulator() -> Iterator[str]:
    """A moto server on a free loopback port for the plans (STS answers the account id)."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a development dependency

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def extract(ref: str, destination: Path) -> Path:
    """The ``terraform/`` tree of git ref ``ref``, written under ``destination``."""
    archive = subprocess.run(
        ["git", "-C", str(terraform.ROOT), "archive", "--format=tar", ref, "terraform"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"plan-check: git archive {ref}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="tar")
    return destination / "terraform"


def base_root(tree: Path, endpoint: str) -> tuple[Path, dict[str, str]]:
    """The production root of an extracted ``terraform/`` tree, pointed at ``endpoint`` (by this
    checkout's provider override), and the variables that does it."""
    aws = tree / "envs" / "aws"
    if aws.is_dir():
        return terraform.staged_root(aws, tree.parent / "stage", endpoint=endpoint), {}
    # Before envs/: the root module was terraform/ itself, with an endpoint variable.
    return tree, {"aws_endpoint_url": endpoint}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling plan-check", description=__doc__)
    parser.add_argument("--base", default=os.environ.get("PLAN_CHECK_BASE") or "main")
    parser.add_argument("--var-file", type=Path, default=PROD_EXAMPLE)
    parser.add_argument(
        "--runtime", default=host_runtime(), help="packages in build/ (make build): their runtime"
    )
    parser.add_argument("--arch", default=HOST_ARCH, help="... and their architecture")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if anything changes beyond the moves"
    )
    args = parser.parse_args(argv)

    variables = {
        "lambda_runtime": args.runtime,
        "lambda_architecture": args.arch,
        "build_dir": str(terraform.ROOT / "build"),
    }
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    with tempfile.TemporaryDirectory(prefix="plan-check-") as tmp, emulator() as endpoint:
        work = Path(tmp)
        env = terraform.environment(work, credentials)
        print(f"==> planning {args.var_file.name} with the Terraform of {args.base}", flush=True)
        old_root, old_variables = base_root(extract(args.base, work / "base"), endpoint)
        base = terraform.plan(
            env, old_root, work / "base-plan", {**variables, **old_variables}, [args.var_file]
        )
        print("==> planning it with the working tree's terraform/envs/aws", flush=True)
        new_root = terraform.staged_root(terraform.AWS_ROOT, work / "new", endpoint=endpoint)
        new = terraform.plan(env, new_root, work / "new-plan", variables, [args.var_file])
        statements = moved_statements(new_root, new.get("configuration", {}))
        difference = compare(base, new, statements)
    print(report(difference, f"{args.base}", "working tree (terraform/envs/aws)"))
    return 1 if args.strict and not difference.none else 0


if __name__ == "__main__":
    sys.exit(main())
