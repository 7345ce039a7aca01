"""Fixtures shared by every tier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import CORPUS, CORPUS_MISSING


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared image corpus (../shared/corpus beside the checkout, as in CI)."""
    if not (CORPUS / "manifest.csv").is_file():
        pytest.skip(CORPUS_MISSING)
    return CORPUS


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = ""
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(aws_request_id=str(uuid.uuid4()))
