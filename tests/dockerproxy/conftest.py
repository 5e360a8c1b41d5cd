"""The Docker proxy for tests: a real `manage.py dockerproxy` on the test database, and learners with live sandboxes
whose uid sockets the real docker CLI (Debian's, as in workstations) talks to."""
from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from config.processes import running_dockerproxy
from django.test import override_settings

from sandbox.dockerproxy.names import Namespace
from sandbox.dockerproxy.volumes import volume_disk_remove
from sandbox.models import Sandbox
from sandbox.services import learner_network_ensure

DOCKER_CLI = "/usr/bin/docker"  # Debian's docker.io CLI, the one the workstation image has


@contextmanager
def running_proxy(directory: Path, env: dict[str, str] | None = None):
    """A real `manage.py dockerproxy` serving the uid directories under `directory`, on the test database, with this
    process's settings pointed at it."""
    with running_dockerproxy(directory=directory, env=env):
        with override_settings(SANDCLOUD_DOCKER_PROXY={**django_settings.SANDCLOUD_DOCKER_PROXY,
                                                       "DIR": str(directory)}):
            yield directory


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory, django_db_setup, docker_engine):
    """A running proxy serving the uid directories under a temporary directory."""
    with running_proxy(tmp_path_factory.mktemp("dockerproxy")) as directory:
        yield directory
        _remove_learner_objects()


def _remove_learner_objects():
    client = docker.from_env()
    instance = django_settings.SANDCLOUD["INSTANCE"]
    _containers_remove(client, "sandcloud.kind=learner-container", f"sandcloud.instance={instance}")
    # The proxy's own prefix (letters and digits of the instance only: a parallel run's test123-gw0 is lrn-test123gw0-).
    _images_remove(client, prefix=Namespace(instance=instance, owner="").tag)
    for volume in client.volumes.list(filters={"label": f"sandcloud.instance={instance}"}):
        volume.remove(force=True)


def _containers_remove(client: docker.DockerClient, *labels: str) -> None:
    """Removes every container that has all the labels. From the engine's plain list: containers.list() inspects each
    container in turn, and fails when one is removed meanwhile (by its --rm, or by another test process)."""
    for summary in client.api.containers(all=True, filters={"label": list(labels)}):
        try:
            client.api.remove_container(summary["Id"], force=True)
        except docker.errors.NotFound:
            pass  # gone meanwhile


def _images_remove(client: docker.DockerClient, *, prefix: str) -> None:
    """Removes every image name that starts with `prefix`. From the engine's plain list: images.list() inspects each
    image in turn, and fails when another test process removes one of them meanwhile."""
    for summary in client.api.images():
        for name in summary.get("RepoTags") or ():
            if name.startswith(prefix):
                try:
                    client.images.remove(name, force=True)
                except docker.errors.NotFound:
                    pass  # its image went with an earlier name


class LearnerDocker:
    """One learner's docker CLI, through the proxy: `run("ps", "-a")` returns the finished process."""

    def __init__(self, socket_path: Path, user):
        self.socket_path = socket_path
        self.user = user
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(socket_path.parent), "DOCKER_HOST": f"unix://{socket_path}",
                    "DOCKER_BUILDKIT": "0"}

    def run(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER_CLI, *args], env=self.env, input=input, capture_output=True, timeout=timeout)

    def ok(self, *args: str, **kwargs) -> str:
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, (args, done.stdout.decode(), done.stderr.decode())
        return done.stdout.decode()

    def refused(self, *args: str, **kwargs) -> str:
        done = self.run(*args, **kwargs)
        assert done.returncode != 0, (args, done.stdout.decode())
        return done.stderr.decode()


_next_uid = iter(range(61000 + os.getpid() % 500 * 8, 10**9))


def learner_docker(proxy_dir: Path, user) -> LearnerDocker:
    """A live sandbox row for `user` on a uid of its own, and the docker CLI on that uid's socket."""
    uid = next(_next_uid)
    Sandbox.objects.create(owner=user, image="sandcloud/workstation:1", memory_mb=256, cpus=0.5, pids_limit=256,
                           uid=uid, state=Sandbox.State.RUNNING, expires_at=timezone.now() + timezone.timedelta(hours=1))
    learner_network_ensure(user_id=user.pk)
    directory = proxy_dir / f"uid-{uid}"
    directory.mkdir()
    socket_path = directory / "docker.sock"
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        assert time.monotonic() < deadline, "the proxy did not listen on the new uid directory"
        time.sleep(0.05)
    return LearnerDocker(socket_path, user)


def _remove_objects_of(user) -> None:
    """Everything a test's learner made on the engine (a later test's learner may get the same user id)."""
    client = docker.from_env()
    tag = f"lrn-{''.join(c for c in django_settings.SANDCLOUD['INSTANCE'].lower() if c.isalnum())}-{user.pk}"
    _containers_remove(client, f"sandcloud.owner={tag}")
    _images_remove(client, prefix=tag + "/")
    for volume in client.volumes.list(filters={"label": f"sandcloud.owner={tag}"}):
        volume.remove(force=True)
        volume_disk_remove(volume.name)


@pytest.fixture
def ada_docker(proxy_dir, learner, transactional_db):
    yield learner_docker(proxy_dir, learner)
    _remove_objects_of(learner)


@pytest.fixture
def grace_docker(proxy_dir, other_learner, transactional_db):
    yield learner_docker(proxy_dir, other_learner)
    _remove_objects_of(other_learner)
