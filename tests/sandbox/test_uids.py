"""uids are reserved engine-wide: a uid another install's container runs on is never handed to a learner here."""
from __future__ import annotations

import pytest
from django.conf import settings

from sandbox import services
from sandbox.engine.docker import DockerEngine, engine
from sandbox.engine.images import LEARNER_GID
from sandbox.models import Sandbox
from sandbox.policy import ContainerSpec, labels_for, workstation_command
from tests.conftest import run_in

pytestmark = pytest.mark.docker

X = services.COLD_UIDS[0]


@pytest.fixture
def other_install(docker_engine):
    """Another install on the same engine (as `make run` is to `make test`), which can start a container on a uid."""
    instance = f"{settings.SANDCLOUD['INSTANCE']}-other"
    other = DockerEngine(url=settings.SANDCLOUD["DOCKER_URL"], timeout=30, instance=instance, parent=engine().parent)
    made = []

    def hold(uid: int) -> str:
        spec = ContainerSpec(name=f"sandcloud-{instance}-sandbox-{len(made) + 1}",
                             image=settings.SANDCLOUD["WORKSTATION_IMAGE"], uid=uid, gid=LEARNER_GID,
                             labels=labels_for(instance, sandbox_id=len(made) + 1, owner="someone"),
                             limits=services.default_limits(), command=workstation_command())
        made.append(other.run(spec))
        return made[-1]

    yield hold
    for container_id in made:
        other.remove(container_id)


def test_a_uid_another_install_runs_on_is_never_picked_even_when_it_is_the_last_one(other_install, start_sandbox,
                                                                                   learner, monkeypatch):
    other_install(X)
    monkeypatch.setattr(services, "COLD_UIDS", range(X, X + 1))
    before = {c.id for c in engine().managed_containers()}

    with pytest.raises(services.QuotaExceeded, match="capacity"):
        services.sandbox_request(owner=learner)

    assert not Sandbox.objects.exists()
    assert {c.id for c in engine().managed_containers()} == before


def test_a_uid_taken_between_request_and_start_is_drawn_again_before_the_container_runs(other_install, learner,
                                                                                        start_sandbox, monkeypatch):
    monkeypatch.setattr(services, "COLD_UIDS", range(X, X + 2))
    monkeypatch.setattr(services, "_after_cold_request", lambda sandbox_id: None)  # the worker comes later
    requested = services.sandbox_request(owner=learner)
    holder = other_install(requested.uid)  # the other install starts a container on that very uid meanwhile

    sandbox = services.sandbox_provision(sandbox_id=requested.pk)

    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        assert sandbox.uid != requested.uid
        assert run_in(sandbox, "id -u", timeout=5) == (0, f"{sandbox.uid}\n")
        assert engine().api.inspect_container(sandbox.container_id)["Config"]["Labels"]["sandcloud.uid"] == str(
            sandbox.uid)
        assert engine().state(holder).running  # the other install's learner keeps theirs
    finally:
        services.sandbox_stop(sandbox_id=sandbox.pk)
