"""What a handler's cold start imports: only what it uses (the time it takes is make bench's job).

Each handler is imported in a fresh interpreter set up like Lambda's (LAMBDA_TASK_ROOT and
function name set, so Powertools' Tracer is on and the X-Ray SDK samples locally), and the
modules it pulled in are checked: tracing patches botocore and nothing else, and no HTTP or
database library of the X-Ray SDK's list is imported as a side effect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tooling.functions import FUNCTIONS

from tests.support import LAMBDA_ENV

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import media_pipeline.handlers.{handler} as handler
print(json.dumps({{
    "tracing": not handler.tracer.disabled,
    "patched": sorted(handler.tracer._config["patch_modules"] or ["<all>"]),
    "modules": sorted(sys.modules),
}}))
"""
# Libraries the X-Ray SDK patches when told to patch everything (those this interpreter has).
NOT_WANTED = ("requests", "sqlite3", "httpx", "aiobotocore", "pymysql", "psycopg2", "sqlalchemy")


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_a_cold_start_traces_aws_calls_and_imports_nothing_else_for_it(handler, tmp_path):
    env = {**LAMBDA_ENV, "LAMBDA_TASK_ROOT": str(tmp_path), "PYTHONPATH": str(ROOT / "lambdas")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(handler=handler)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe["tracing"] is True
    assert probe["patched"] == ["botocore"]
    assert "aws_xray_sdk.ext.botocore.patch" in probe["modules"]
    assert not [m for m in probe["modules"] if m.split(".")[0] in NOT_WANTED]
