"""make localstack-down forgets LocalStack's Terraform state even where compose cannot run."""

from __future__ import annotations

import os
import stat

import pytest
from devstack import localstack

STATE_FILES = ("terraform.tfstate", "terraform.tfstate.backup", "outputs.json")


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    state = tmp_path / "localstack"
    state.mkdir()
    for name in STATE_FILES:
        (state / name).write_text("{}")
    monkeypatch.setattr(localstack, "STATE_DIR", state)
    return state


def test_without_docker_the_state_is_removed_and_the_reason_given(state_dir, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    problem = localstack.down()

    assert "docker is not installed" in problem
    assert not any((state_dir / name).exists() for name in STATE_FILES)


def test_a_docker_cli_without_compose_removes_the_state_too(state_dir, tmp_path, monkeypatch):
    # a docker client with no compose plugin, as on a machine with only the CLI installed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text('#!/bin/sh\necho "docker: unknown command: docker $1" >&2\nexit 1\n')
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")

    problem = localstack.down()

    assert "compose" in problem
    assert not any((state_dir / name).exists() for name in STATE_FILES)
