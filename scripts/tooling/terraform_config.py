"""The project's Terraform, read as data (python-hcl2): a module's variables, outputs, version
requirements, module calls and resources.

What reads it: the module READMEs (``tf_docs``, ``python -m tooling tf-docs``) and the tests,
which build their DynamoDB tables from the module's own ``aws_dynamodb_table`` blocks
(:func:`create_table_arguments`) and compare the code's defaults with the variables'. Only what
a block states literally is read; an expression (``var.x``, a ``dynamic`` block) stays the
string Terraform would evaluate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from tooling.terraform import TERRAFORM_DIR

MODULES_DIR = TERRAFORM_DIR / "modules"
_OPTIONS = SerializationOptions(
    strip_string_quotes=True, with_comments=False, preserve_heredocs=False
)
_BLOCK = "__is_block__"


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    type: str  # as written, e.g. "string" or "map(number)"
    required: bool  # no default
    default: Any = None
    sensitive: bool = False


@dataclass(frozen=True)
class Output:
    name: str
    description: str
    sensitive: bool = False


@dataclass(frozen=True)
class Module:
    """A Terraform module: every ``*.tf`` file of its directory (override files left out)."""

    path: Path
    variables: tuple[Variable, ...]
    outputs: tuple[Output, ...]
    requirements: dict[str, str]  # "terraform" and each provider -> version constraint
    calls: dict[str, str]  # module name -> source
    resources: dict[str, dict[str, dict[str, Any]]]  # type -> name -> body
    data_sources: dict[str, dict[str, dict[str, Any]]]  # type -> name -> body

    def variable(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)


def expression(value: Any) -> Any:
    """A value as written: an expression without the ``${...}`` python-hcl2 wraps it in."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def _plain(value: Any) -> Any:
    """A literal value without python-hcl2's block markers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != _BLOCK}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _entries(document: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``kind`` blocks of a parsed file, as (label, body)."""
    return [(label, body) for block in document.get(kind, []) for label, body in block.items()]


def _variable(name: str, body: dict[str, Any]) -> Variable:
    return Variable(
        name=name,
        description=body.get("description", ""),
        type=expression(body.get("type", "any")),
        required="default" not in body,
        default=_plain(body.get("default")),
        sensitive=body.get("sensitive") is True,
    )


def _requirements(document: dict[str, Any]) -> dict[str, str]:
    """``required_version`` (as "terraform") and each required provider's version."""
    found = {}
    for settings in document.get("terraform", []):
        if "required_version" in settings:
            found["terraform"] = settings["required_version"]
        for providers in settings.get("required_providers", []):
            found |= {
                provider: spec.get("version", "")
                for provider, spec in providers.items()
                if provider != _BLOCK
            }
    return found


@functools.cache
def load(path: Path) -> Module:
    """The module in the directory ``path``."""
    variables, outputs, requirements, calls = [], [], {}, {}
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    data_sources: dict[str, dict[str, dict[str, Any]]] = {}
    for file in sorted(path.glob("*.tf")):
        if file.stem.endswith("_override"):
            continue
        with file.open() as handle:
            document = hcl2.load(handle, serialization_options=_OPTIONS)
        variables += [_variable(name, body) for name, body in _entries(document, "variable")]
        outputs += [
            Output(name, body.get("description", ""), body.get("sensitive") is True)
            for name, body in _entries(document, "output")
        ]
        calls |= {name: body["source"] for name, body in _entries(document, "module")}
        requirements |= _requirements(document)
        for blocks, found in ((resources, "resource"), (data_sources, "data")):
            for kind, named in _entries(document, found):
                blocks.setdefault(kind, {}).update(
                    (name, body) for name, body in named.items() if name != _BLOCK
                )
    return Module(
        path=path,
        variables=tuple(sorted(variables, key=lambda v: v.name)),
        outputs=tuple(sorted(outputs, key=lambda o: o.name)),
        requirements=requirements,
        calls=calls,
        resources=resources,
        data_sources=data_sources,
    )


def modules() -> list[Module]:
    """Every module under terraform/modules."""
    return [load(path) for path in sorted(MODULES_DIR.iterdir()) if path.is_dir()]


def create_table_arguments(table: dict[str, Any], name: str) -> dict[str, Any]:
    """DynamoDB's CreateTable arguments for an ``aws_dynamodb_table`` block, as named ``name``:
    its key, the attributes, indexes, stream and billing mode it states literally (``dynamic``
    blocks, such as the media table's legacy indexes, are left out)."""

    def key_schema(block: dict[str, Any]) -> list[dict[str, str]]:
        schema = [{"AttributeName": block["hash_key"], "KeyType": "HASH"}]
        if "range_key" in block:
            schema.append({"AttributeName": block["range_key"], "KeyType": "RANGE"})
        return schema

    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(table),
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]}
            for a in table.get("attribute", [])
        ],
        "BillingMode": table["billing_mode"],
    }
    indexes = [
        {
            "IndexName": index["name"],
            "KeySchema": key_schema(index),
            "Projection": {"ProjectionType": index["projection_type"]},
        }
        for index in table.get("global_secondary_index", [])
    ]
    if indexes:
        arguments["GlobalSecondaryIndexes"] = indexes
    if table.get("stream_enabled") is True:
        arguments["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": table["stream_view_type"],
        }
    return arguments
