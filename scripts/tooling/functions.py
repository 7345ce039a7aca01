"""The project's Lambda functions, in one place: ``lambdas/functions.json``.

``{name: {"layers": [...]}}``: each function's handler is ``media_pipeline.handlers.<name>``,
its layers are listed in Terraform's order (a later layer's files win in ``/opt``). The Makefile,
``scripts/build.py``, ``scripts/bench.py`` and the tests read it; the Terraform names each
function by hand (a module per function), and ``tests/unit/test_build.py`` checks that it names
exactly these, with these layers.
"""

from __future__ import annotations

import json
from pathlib import Path

FUNCTIONS_FILE = Path(__file__).resolve().parents[2] / "lambdas" / "functions.json"


def load(path: Path = FUNCTIONS_FILE) -> dict[str, tuple[str, ...]]:
    """Each function's layers, by function name, in the file's order."""
    return {name: tuple(spec["layers"]) for name, spec in json.loads(path.read_text()).items()}


FUNCTION_LAYERS = load()
FUNCTIONS = tuple(FUNCTION_LAYERS)
LAYERS = tuple(sorted({layer for layers in FUNCTION_LAYERS.values() for layer in layers}))
