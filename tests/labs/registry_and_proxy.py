"""What the solution bot starts behind a workstation's docker CLI: ECR's registry and the Docker proxy, each a real
process on the test database, and the clean-up of what the learners made on the engine."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import docker
from django.conf import settings
from django.test import override_settings

from config.processes import BASE_DIR, RegistryProcess, running_dockerproxy, running_registry


@dataclass(frozen=True)
class LabRegistry:
    process: RegistryProcess
    directory: Path

    @property
    def settings(self) -> dict:
        """SANDCLOUD_REGISTRY's entries that point a process at this registry."""
        return {"PORT": self.process.port, "DIR": str(self.directory)}

    @property
    def env(self) -> dict[str, str]:
        """The same for a child process (the edge names the registry in repository URIs; the proxy pushes to it)."""
        return {"SANDCLOUD_REGISTRY_PORT": str(self.process.port), "SANDCLOUD_REGISTRY_DIR": str(self.directory)}


@contextmanager
def registry_for_labs(*, token_url: str, directory: Path) -> Iterator[LabRegistry]:
    """ECR's registry on a free port, storing in `directory`; every image pushed to it is removed afterwards, from the
    registry and from the engine that pushed it."""
    with override_settings(SANDCLOUD_REGISTRY={**settings.SANDCLOUD_REGISTRY, "DIR": str(directory)}):
        with running_registry(token_url=token_url, log_dir=directory) as process:
            try:
                yield LabRegistry(process=process, directory=directory)
            finally:
                _engine_images_remove(lambda tag: tag.startswith(process.host + "/"))
    shutil.rmtree(directory / "storage", ignore_errors=True)


@contextmanager
def docker_proxy_running(*, env: dict[str, str]) -> Iterator[Path]:
    """`manage.py dockerproxy` serving SANDCLOUD_DOCKER_PROXY["DIR"], the directory this install's workstations mount
    their socket from; afterwards the learners' containers, volumes and images of this instance are removed."""
    directory = Path(settings.SANDCLOUD_DOCKER_PROXY["DIR"])
    log_path = BASE_DIR / "var" / "log" / f"dockerproxy-{settings.SANDCLOUD['INSTANCE']}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with running_dockerproxy(directory=directory, env=env, log_path=log_path):
            yield directory
    finally:
        _learner_objects_remove()
        shutil.rmtree(directory, ignore_errors=True)


def _engine_images_remove(matches) -> None:
    client = docker.from_env()
    try:
        for image in client.images.list():
            for tag in image.tags:
                if matches(tag):
                    client.images.remove(tag, force=True)
    finally:
        client.close()


def _learner_objects_remove() -> None:
    instance = settings.SANDCLOUD["INSTANCE"]
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": "sandcloud.kind=learner-container"}):
            if container.labels.get("sandcloud.instance") == instance:
                container.remove(force=True)
        for volume in client.volumes.list(filters={"label": f"sandcloud.instance={instance}"}):
            volume.remove(force=True)
    finally:
        client.close()
    from sandbox.dockerproxy.names import Namespace

    prefix = Namespace(instance=instance, owner="").tag  # lrn-<instance>-: every learner of this instance
    _engine_images_remove(lambda tag: tag.startswith(prefix))
