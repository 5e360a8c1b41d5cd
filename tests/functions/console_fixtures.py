"""Fixtures of the Lambda console's tests: a private code store, and every execution environment removed afterwards."""
from __future__ import annotations

import pytest

from sandbox.functions import reaper
from sandbox.functions.models import ExecutionEnvironment


@pytest.fixture
def console_store(transactional_db, tmp_path, settings):
    """The console writes through the services, whose on_commit steps (a version turning Active) need real commits."""
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "CODE_DIR": str(tmp_path / "code")}
    yield
    reaper.environments_remove(rows=list(ExecutionEnvironment.objects.all()))


@pytest.fixture
def console_runtime(console_store, runtime_image, docker_engine):
    """As console_store, for tests that invoke: the runtime image must be there."""
    return runtime_image
