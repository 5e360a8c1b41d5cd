"""ECR fixtures: a real docker-registry trusting the live server's tokens, learners' accounts, and boto3 clients."""
from __future__ import annotations

import base64
import io
import os
import shutil
import tarfile

import docker
import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from config.processes import running_registry
from sandbox.awsapi import identity, providers
from tests.aws_clients import aws_client_for
from sandbox.registry.api import EcrApi


@pytest.fixture(scope="session")
def registry(django_db_setup, live_server, tmp_path_factory):
    """The registry (front and docker-registry) on a free loopback port, storing in a temporary directory, asking the
    live server for tokens and recording pushes in the test database (set up first, so it is the one it opens)."""
    directory = tmp_path_factory.mktemp("registry")
    with override_settings(SANDCLOUD_REGISTRY={**django_settings.SANDCLOUD_REGISTRY, "DIR": str(directory)}):
        with running_registry(token_url=live_server.url + "/registry/token", log_dir=directory) as process:
            yield {"process": process, "dir": str(directory)}
    shutil.rmtree(directory / "storage", ignore_errors=True)  # every image the tests pushed


@pytest.fixture(autouse=True)
def registry_settings(request, settings):
    """Points the site at the test registry (its port and key directory) for tests that use it, and makes sure the
    ECR API is served (a test may switch it off, as SANDCLOUD_REGISTRY_ENABLED=0 does)."""
    providers.provider_register("ecr", EcrApi)
    if "registry" in request.fixturenames:
        running = request.getfixturevalue("registry")
        settings.SANDCLOUD_REGISTRY = {**settings.SANDCLOUD_REGISTRY, "DIR": running["dir"],
                                       "PORT": running["process"].port}
    yield
    providers.provider_register("ecr", EcrApi)


@pytest.fixture
def account(learner):
    return identity.aws_account_for(user=learner)


@pytest.fixture
def other_account(other_learner):
    return identity.aws_account_for(user=other_learner)


def _client_for(live_server, user):
    return aws_client_for(live_server, user, "ecr")


@pytest.fixture
def ecr(live_server, registry, learner):
    """ada's ECR client, signed with her real key."""
    return _client_for(live_server, learner)


@pytest.fixture
def other_ecr(live_server, registry, other_learner):
    """grace's: another learner, another account."""
    return _client_for(live_server, other_learner)


def error_of(caught) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


@pytest.fixture
def docker_client(docker_engine):
    """A Docker SDK client of its own (a login stays in the client that made it), closed afterwards."""
    client = docker.DockerClient(base_url=django_settings.SANDCLOUD["DOCKER_URL"], timeout=120, version="auto")
    yield client
    client.close()


@pytest.fixture
def tiny_image(docker_client):
    """make(reference, also=(tag, ...)) → a one-file image imported under `reference` and tagged `also` in the same
    repository; every reference made is removed afterwards."""
    made: list[str] = []

    def make(reference: str, content: bytes = b"hello from the registry tests\n", also: tuple[str, ...] = ()) -> str:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("hello.txt")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        repository, _, tag = reference.rpartition(":")
        docker_client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
        made.append(reference)
        for other in also:
            docker_client.api.tag(reference, repository, other)
            made.append(f"{repository}:{other}")
        return reference

    yield make
    for reference in made:
        try:
            docker_client.images.remove(reference, force=True)
        except docker.errors.ImageNotFound:
            pass


def password_of(ecr) -> str:
    (data,) = ecr.get_authorization_token()["authorizationData"]
    return base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]


def push(docker_client, reference: str, password: str, on_message=None) -> str | None:
    """Pushes as `docker push` does; the engine's error message, or None when the push succeeded. `on_message` sees
    each progress message as it comes."""
    repository, _, tag = reference.rpartition(":")
    for message in docker_client.api.push(repository, tag=tag, stream=True, decode=True,
                                          auth_config={"username": "AWS", "password": password}):
        if on_message is not None:
            on_message(message)
        if "error" in message:
            return message["error"]
    return None


@pytest.fixture
def layered_image(docker_client):
    """make(reference, layers=3, mb=4) → an image of `layers` layers of random bytes (built FROM scratch, nothing
    pulled), so a push takes a while and uploads several blobs; removed afterwards."""
    made: list[str] = []

    def make(reference: str, layers: int = 3, mb: float = 4) -> str:
        buffer = io.BytesIO()
        dockerfile = "FROM scratch\n" + "".join(f"COPY part{i} /part{i}\n" for i in range(layers))
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, content in [("Dockerfile", dockerfile.encode()),
                                  *((f"part{i}", os.urandom(int(mb * 1024 * 1024))) for i in range(layers))]:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
        for attempt in range(2):
            buffer.seek(0)
            try:
                docker_client.images.build(fileobj=buffer, custom_context=True, tag=reference, rm=True)
                break
            except docker.errors.BuildError as error:
                # Once in a clean-clone run the classic builder lost an intermediate image between two steps while the
                # suite's other processes removed images on the same engine: build again, once.
                if attempt or "unable to find image" not in str(error):
                    raise
        made.append(reference)
        return reference

    yield make
    for reference in made:
        try:
            docker_client.images.remove(reference, force=True)
        except docker.errors.ImageNotFound:
            pass
