"""The learner's docker CLI through the proxy: the everyday commands work, with the platform's limits."""
from __future__ import annotations

import json


def test_docker_version_shows_the_engine_through_the_proxy(ada_docker):
    out = ada_docker.ok("version", "--format", "{{json .Server}}")
    assert json.loads(out)["ApiVersion"] == "1.41"


def test_run_rm_prints_the_containers_output(ada_docker):
    out = ada_docker.ok("run", "--rm", "sandcloud/python:3.11", "python3", "-c", "print(6*7)")
    assert out.strip() == "42"


def test_ps_lists_the_learners_container_by_its_own_name(ada_docker):
    ada_docker.ok("run", "-d", "--name", "web", "sandcloud/python:3.11", "sleep", "60")
    out = ada_docker.ok("ps", "--format", "{{.Names}} {{.Image}}")
    assert out.split() == ["web", "sandcloud/python:3.11"]
