"""Pulled images keep the promise locally built ones make: no setuid or setgid program reaches a sandbox."""
from __future__ import annotations

import io
import socket
import subprocess
import tarfile
import time

import pytest
import requests
from django.conf import settings

from sandbox.engine.images import ImageRecipe, adopt_pulled_image, ensure_images

pytestmark = pytest.mark.docker

FILES = {"bin/tool": 0o4755, "bin/group-tool": 0o2755, "bin/plain": 0o755, "etc/keep": 0o644}


def _tar(files: dict[str, int]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, mode in files.items():
            content = f"contents of {name}\n".encode()
            member = tarfile.TarInfo(name)
            member.mode, member.size = mode, len(content)
            archive.addfile(member, io.BytesIO(content))
    return data.getvalue()


def _exported(client, image: str) -> dict[str, tuple[int, bytes]]:
    """Mode and content of each regular file of the image, read from `docker export` as the test's own check."""
    container = client.api.create_container(image, command=["true"])
    try:
        stream = b"".join(client.api.export(container["Id"]))
    finally:
        client.api.remove_container(container["Id"], force=True)
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
        return {m.name: (m.mode, archive.extractfile(m).read()) for m in archive if m.isreg()}


@pytest.fixture
def images(docker_engine):
    """Image tags of this test run, removed afterwards."""
    client, prefix, made = docker_engine.client, f"sandcloud-test-{settings.SANDCLOUD['INSTANCE']}", []

    def name(suffix: str) -> str:
        """A tag of this run's (a full reference, e.g. one in a registry, is taken as it is)."""
        made.append(suffix if "/" in suffix else f"{prefix}/{suffix}")
        return made[-1]

    yield client, name
    for tag in made:
        try:
            client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - an image the test never made
            pass


def test_a_pulled_image_with_setuid_programs_is_tagged_only_without_them(images):
    client, name = images
    # A locally imported image stands in for one `docker pull` brought from a registry.
    pulled, tag = name("pulled:setuid"), name("sandbox:setuid")
    repository, _, version = pulled.rpartition(":")
    client.api.import_image_from_data(_tar(FILES), repository=repository, tag=version,
                                      changes=['ENV GREETING="hello world"', 'CMD ["/bin/plain"]', "WORKDIR /etc"])
    assert _exported(client, pulled)["bin/tool"][0] & 0o6000  # the stand-in really carries them

    adopt_pulled_image(client, reference=pulled, tag=tag, say=lambda message: None)

    files = _exported(client, tag)
    assert {path: files[path][0] & 0o7777 for path in FILES} == {
        "bin/tool": 0o755, "bin/group-tool": 0o755, "bin/plain": 0o755, "etc/keep": 0o644}
    assert files["etc/keep"][1] == b"contents of etc/keep\n"
    assert not [path for path, (mode, _) in files.items() if mode & 0o6000]
    config = client.api.inspect_image(tag)["Config"]
    assert "GREETING=hello world" in config["Env"]
    assert config["Cmd"] == ["/bin/plain"] and config["WorkingDir"] == "/etc"


def test_a_pulled_image_without_setuid_programs_is_tagged_as_it_is(images):
    client, name = images
    pulled, tag = name("pulled:clean"), name("sandbox:clean")
    repository, _, version = pulled.rpartition(":")
    client.api.import_image_from_data(_tar({"bin/plain": 0o755}), repository=repository, tag=version)

    adopt_pulled_image(client, reference=pulled, tag=tag, say=lambda message: None)

    assert client.images.get(tag).id == client.images.get(pulled).id


@pytest.fixture
def local_registry(tmp_path):
    """A registry on a loopback port of its own (Docker pushes to and pulls from 127.0.0.1 without TLS)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
                      f"http: {{addr: 127.0.0.1:{port}}}\nlog: {{level: error}}\n")
    server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


def test_sandbox_images_pulls_through_a_registry_and_keeps_no_setuid_program(images, local_registry):
    client, name = images
    pushed = name("pushed:setuid")
    repository, _, version = pushed.rpartition(":")
    client.api.import_image_from_data(_tar(FILES), repository=repository, tag=version, changes=['CMD ["/bin/plain"]'])
    remote = name(f"{local_registry}/{repository}:{version}")
    client.images.get(pushed).tag(remote)
    client.images.push(remote)
    client.images.remove(remote)
    tag = name("sandbox:pulled")
    recipe = ImageRecipe(name="pulled", tag=tag, packages=(), pull_reference=remote)
    out = io.StringIO()

    built = ensure_images([recipe], client=client, out=out)

    assert built == [tag]
    assert "removing the bits" in out.getvalue()
    files = _exported(client, tag)
    assert not [path for path, (mode, _) in files.items() if mode & 0o6000]
    assert files["bin/tool"][0] & 0o7777 == 0o755
