"""Fixtures for the abuse suite: a second learner's sandbox to watch, and a host service for sandboxes to aim at."""
from __future__ import annotations

import socket

import pytest


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
