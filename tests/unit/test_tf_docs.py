"""The modules' READMEs: generated from their .tf files, and current (make lint checks too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tooling import terraform_config, tf_docs

VARIABLES = """
variable "size" {
  description = "How big | how small."
  type        = number
  default     = 3
}

variable "shape" {
  description = "The <shape> of it."
  type = object({
    sides  = optional(number, 4)
    labels = optional(map(string), {})
    inner  = optional(object({ depth = number, name = string }))
  })
}
"""


def module(tmp_path: Path, variables: str = VARIABLES) -> terraform_config.Module:
    (tmp_path / "variables.tf").write_text(variables)
    (tmp_path / "outputs.tf").write_text(
        'output "size" {\n  description = "The size."\n  value = var.size\n}\n'
    )
    terraform_config.load.cache_clear()
    return terraform_config.load(tmp_path)


def test_every_module_has_a_readme_whose_tables_are_its_tf_files():
    for found in terraform_config.modules():
        readme = found.path / "README.md"
        assert readme.is_file(), readme
        assert tf_docs.rendered(readme, found) == readme.read_text(), f"{readme}: make tf-docs"


def test_a_readme_says_what_each_input_is_with_its_type_and_default(tmp_path):
    section = tf_docs.section(module(tmp_path))
    assert "| `size` | How big \\| how small. | `number` | `3` | no |" in section
    assert "| `shape` | The &lt;shape&gt; of it. | <pre>object({<br>" in section
    assert "<br>  sides = optional(number, 4)<br>" in section
    assert "<br>  labels = optional(map(string), {})<br>" in section
    assert (
        "<br>  inner = optional(object({<br>    depth = number<br>    name = string<br>  }))"
        in section
    )
    assert "| n/a | yes |" in section  # shape has no default
    assert "| `size` | The size. | no |" in section


def test_a_readme_is_stale_once_its_module_changes(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# m\n\nWritten by hand.\n\n{tf_docs.BEGIN}\n{tf_docs.END}\n\nAfter.\n")
    readme.write_text(tf_docs.rendered(readme, module(tmp_path)))
    assert tf_docs.rendered(readme, module(tmp_path)) == readme.read_text()
    assert readme.read_text().startswith("# m\n\nWritten by hand.\n")
    assert readme.read_text().endswith(f"{tf_docs.END}\n\nAfter.\n")
    changed = module(tmp_path, VARIABLES.replace("default     = 3", "default     = 4"))
    assert tf_docs.rendered(readme, changed) != readme.read_text()


def test_a_readme_without_the_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# m\n")
    with pytest.raises(ValueError, match="BEGIN_TF_DOCS"):
        tf_docs.rendered(readme, module(tmp_path))
