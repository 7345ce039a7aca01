"""The README of each module under terraform/modules: its requirements, inputs, outputs, module
calls and resources, generated from its ``.tf`` files (``terraform_config``), as
terraform-docs writes them for terraform-aws-modules.

    python -m tooling tf-docs            # rewrite what stands between the markers (make tf-docs)
    python -m tooling tf-docs --check    # exit 1 if a README is stale or missing (make lint)

Each README is written by hand around one generated section, between ``<!-- BEGIN_TF_DOCS -->``
and ``<!-- END_TF_DOCS -->``; a README without the markers is refused, not overwritten.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path
from typing import Any

from tooling import terraform_config
from tooling.terraform import ROOT

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
_INLINE = 60  # a type or default longer than this (or on several lines) is shown in a <pre>


def _cell(text: str) -> str:
    """Text for a markdown table cell: on one line, no HTML (``<name>`` is text), pipes
    escaped."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _pre(lines: list[str]) -> str:
    """Code in a table cell: inline when short, else a <pre> block (as terraform-docs does)."""
    if len(lines) == 1 and len(lines[0]) <= _INLINE:
        return "`" + lines[0].replace("|", "\\|") + "`"
    body = "<br>".join(html.escape(line, quote=False) for line in lines)
    return f"<pre>{body.replace('|', '&#124;')}</pre>"


def type_lines(expression: str) -> list[str]:
    """A type expression laid out as Terraform code is, one attribute a line (python-hcl2 gives
    it on one line): each ``{...}`` that holds something opens an indented block, whose
    attributes the commas separate; commas inside ``(...)`` stay."""
    if len(expression) <= _INLINE:
        return [expression]
    lines: list[str] = []
    line, stack, quoted = "", [], False
    rest = iter(range(len(expression)))
    for index in rest:
        char = expression[index]
        if quoted or char == '"':
            quoted = quoted != (char == '"')
            line += char
        elif char == "{" and expression[index + 1 : index + 2] == "}":
            line += "{}"
            next(rest)
        elif char == "{":
            lines.append(line + "{")
            stack.append("{")
            line = "  " * stack.count("{")
        elif char == "}":
            lines.append(line)
            stack.pop()
            line = "  " * stack.count("{") + "}"
        elif char == "," and stack and stack[-1] == "{":
            lines.append(line)
            line = "  " * stack.count("{")
        elif char in "([":
            stack.append(char)
            line += char
        elif char in ")]":
            stack.pop()
            line += char
        elif not (char == " " and line.endswith(" ")):
            line += char
    lines.append(line)
    return [text.rstrip() for text in lines if text.strip()]


def default_lines(value: Any) -> list[str]:
    """A default as JSON (terraform-docs' way): one line if short, else indented."""
    compact = json.dumps(value)
    if len(compact) <= _INLINE:
        return [compact]
    return json.dumps(value, indent=2).splitlines()


def _table(header: list[str], rows: list[list[str]], *, empty: str) -> list[str]:
    if not rows:
        return [empty]
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("------" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def section(module: terraform_config.Module) -> str:
    """The generated part of a module's README, markers included."""
    lines = [BEGIN, "## Requirements", ""]
    lines += _table(
        ["Name", "Version"],
        [[name, f"`{version}`"] for name, version in module.requirements.items()],
        empty="No requirements.",
    )
    lines += ["", "## Modules", ""]
    lines += _table(
        ["Name", "Source"],
        [[name, f"`{source}`"] for name, source in sorted(module.calls.items())],
        empty="No modules.",
    )
    lines += ["", "## Resources", ""]
    lines += _table(
        ["Name", "Type"],
        [
            [f"`{prefix}{kind}.{name}`", what]
            for prefix, what, blocks in (
                ("", "resource", module.resources),
                ("data.", "data source", module.data_sources),
            )
            for kind in sorted(blocks)
            for name in sorted(blocks[kind])
        ],
        empty="No resources.",
    )
    lines += ["", "## Inputs", ""]
    lines += _table(
        ["Name", "Description", "Type", "Default", "Required"],
        [
            [
                f"`{v.name}`",
                _cell(v.description),
                _pre(type_lines(v.type)),
                "n/a" if v.required else _pre(default_lines(v.default)),
                "yes" if v.required else "no",
            ]
            for v in module.variables
        ],
        empty="No inputs.",
    )
    lines += ["", "## Outputs", ""]
    lines += _table(
        ["Name", "Description", "Sensitive"],
        [
            [f"`{o.name}`", _cell(o.description), "yes" if o.sensitive else "no"]
            for o in module.outputs
        ],
        empty="No outputs.",
    )
    return "\n".join([*lines, END])


_SECTION = re.compile(rf"{re.escape(BEGIN)}.*?{re.escape(END)}", re.S)


def rendered(readme: Path, module: terraform_config.Module) -> str:
    """The README with its generated section as the module's ``.tf`` files say."""
    text = readme.read_text()
    if not _SECTION.search(text):
        raise ValueError(f"{readme} has no {BEGIN} ... {END} section")
    return _SECTION.sub(lambda _: section(module), text, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling tf-docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which READMEs are stale")
    args = parser.parse_args(argv)
    stale, missing = [], []
    for module in terraform_config.modules():
        readme = module.path / "README.md"
        name = str(readme.relative_to(ROOT))
        if not readme.is_file():
            missing.append(name)
            continue
        try:
            text = rendered(readme, module)
        except ValueError as error:
            print(error)
            return 1
        if text != readme.read_text():
            stale.append(name)
            if not args.check:
                readme.write_text(text)
                print(f"{name} updated")
    for name in missing:
        print(f"{name} is missing: write its title and description around {BEGIN} and {END}")
    if args.check and stale:
        print("stale module READMEs (make tf-docs rewrites them): " + ", ".join(stale))
    return 1 if missing or (args.check and stale) else 0
