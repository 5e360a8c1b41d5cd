"""The AWS edge listener for tests whose sandboxes call the AWS endpoint (import the fixtures into the test module)."""
from __future__ import annotations

import pytest

from config.processes import EdgeListener, running_edge


@pytest.fixture(scope="module")
def aws_edge_listener(django_db_setup, docker_engine) -> EdgeListener:
    """A real `manage.py awsedge` process on the test database, on a free port of the fence's hole (another install's
    edge, e.g. make run's, may hold the default one)."""
    with running_edge() as edge:
        yield edge


@pytest.fixture
def aws_edge(aws_edge_listener, settings) -> EdgeListener:
    """The edge listener, with this install's sandboxes pointed at it (their ~/.aws/config names its port)."""
    for name, value in aws_edge_listener.settings.items():
        setattr(settings, name, value)
    return aws_edge_listener
