"""From a real workstation: the learner's `docker` reaches the engine through their socket, and keeps their images."""
from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from sandbox import services
from sandbox.dockerproxy.selectors import learner_containers
from sandbox.models import Sandbox
from tests.conftest import run_in


@pytest.fixture
def proxied(proxy_dir, settings):
    settings.SANDCLOUD_DOCKER_PROXY = {**django_settings.SANDCLOUD_DOCKER_PROXY, "DIR": str(proxy_dir)}


def _docker(sandbox, script: str) -> str:
    code, out = run_in(sandbox, script, timeout=120)
    assert code == 0, out
    return out


def test_the_workstation_runs_docker_through_its_own_socket(proxied, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    version = _docker(sandbox, "docker version --format '{{.Client.Version}} {{.Server.APIVersion}}'")
    assert version.split()[1] == "1.41"
    assert _docker(sandbox, "docker run --rm sandcloud/python:3.11 python3 -c 'print(6*7)'").strip() == "42"
    assert _docker(sandbox, "ls -l /var/run/docker.sock 2>&1 || true").count("No such file") == 1


def test_images_outlive_the_workstation_that_built_them(proxied, start_sandbox, learner):
    first = start_sandbox(learner)
    _docker(first, "mkdir -p ~/app && cd ~/app && printf 'FROM sandcloud/python:3.11\\nCMD [\"true\"]\\n' > Dockerfile"
                   " && docker build -q -t kept:1 .")
    services.sandbox_stop(sandbox_id=first.pk)
    second = start_sandbox(learner)
    assert second.uid != first.uid or second.pk != first.pk
    assert "kept:1" in _docker(second, "docker images --format '{{.Repository}}:{{.Tag}}'").split()


def test_a_warm_workstation_gets_docker_once_claimed(proxied, start_sandbox, learner, settings):
    settings.SANDCLOUD = {**settings.SANDCLOUD, "WARM_POOL_SIZE": 1}
    assert services.warm_pool_fill() == 1
    sandbox = start_sandbox(learner)
    assert sandbox.from_warm_pool
    assert _docker(sandbox, "docker ps -a --format '{{.Names}}'").strip() == ""


def test_the_learners_containers_go_with_their_last_workstation(proxied, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    _docker(sandbox, "docker run -d --name web sandcloud/python:3.11 sleep 300")
    assert [c.name for c in learner_containers(user_id=learner.pk)] == ["web"]

    services.sandbox_stop(sandbox_id=sandbox.pk)

    assert learner_containers(user_id=learner.pk) == []


def test_the_reconciler_removes_containers_whose_learner_has_no_workstation(ada_docker, learner):
    ada_docker.ok("run", "-d", "--name", "left-behind", "sandcloud/python:3.11", "sleep", "300")
    Sandbox.objects.filter(owner=learner).update(state=Sandbox.State.STOPPED)

    counts = services.sandbox_reap()

    assert counts["learner_containers"] == 1
    assert learner_containers(user_id=learner.pk) == []
