"""Fixtures for the abuse suite: a second learner's sandbox to watch, and a host service for sandboxes to aim at."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import pytest
from django.conf import settings

from sandbox.engine.docker import engine
from sandbox.policy import subnet_candidates


@pytest.fixture
def bystander(start_sandbox, other_learner):
    """Another learner's sandbox, running beside the attack; it must keep answering."""
    return start_sandbox(other_learner)


@pytest.fixture
def host_service():
    """A TCP service on every host address, as the web app would be if bound to 0.0.0.0; yields its port."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(16)  # the kernel completes handshakes into the backlog; nobody needs to accept()
    yield server.getsockname()[1]
    server.close()


@dataclass(frozen=True)
class Outside:
    address: str
    port: int


@pytest.fixture(scope="session")
def outside(docker_engine):
    """"The outside world", made by the test: a web server on an ordinary (routed, non-internal) Docker network in
    RFC 2544's benchmarking range. The host reaches it; a sandbox must not. Probes never leave this machine."""
    instance = settings.SANDCLOUD["INSTANCE"]
    name = f"sandcloud-{instance}-outside"
    # Not the instance's own label: the reaper would remove a container it does not know as an orphan, and tests
    # that count the instance's containers would count it. ops/test.sh removes leftovers by this label.
    labels = {"sandcloud.test": instance}
    subnet = subnet_candidates(pool="198.19.0.0/16", prefix=28, name=name, count=1)[0]
    network = engine().api.create_network(
        name, driver="bridge", labels=labels, check_duplicate=True,
        ipam={"Driver": "default", "Config": [{"Subnet": subnet}]})
    container = engine().client.containers.run(
        settings.SANDCLOUD["PYTHON_IMAGE"], ["python3", "-m", "http.server", "8080"], name=f"{name}-server",
        labels=labels, network=name, user="65534:65534", working_dir="/tmp", detach=True,
        read_only=True, cap_drop=["ALL"])
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
        deadline = time.monotonic() + 20
        while True:  # the host reaches it: a sandbox that does not is held back by the fence, not by a dead server
            try:
                socket.create_connection((address, 8080), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield Outside(address=address, port=8080)
    finally:
        container.remove(force=True)
        engine().api.remove_network(network["Id"])
