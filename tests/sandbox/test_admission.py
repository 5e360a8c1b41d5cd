"""Admission: the host's count and memory budget hold for every learner together, concurrent requests included."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from sandbox import services
from sandbox.engine.cgroups import sandboxes_memory_mb
from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from sandbox.states import COUNTED


def _budget_for(settings, *, sandboxes: int) -> dict:
    """The overcommit factor that makes the memory budget exactly `sandboxes` default sandboxes."""
    wanted = sandboxes * services.default_limits().memory_mb
    return {"MEMORY_OVERCOMMIT": wanted / sandboxes_memory_mb(settings.SANDCLOUD["SANDBOXES_CGROUP"])}


@pytest.mark.docker
def test_a_sandbox_past_the_memory_budget_is_refused_and_another_learner_within_it_is_served(
        start_sandbox, learner, other_learner, settings):
    settings.SANDCLOUD = {**settings.SANDCLOUD, **_budget_for(settings, sandboxes=2)}
    first = start_sandbox(learner)
    containers = {c.id for c in engine().managed_containers()}
    bigger = services.default_limits().with_overrides(memory_mb=first.memory_mb + 1)

    with pytest.raises(services.QuotaExceeded, match="not have enough memory free"):
        services.sandbox_request(owner=learner, limits=bigger)  # 256 + 257 MB of a 512 MB budget

    assert list(Sandbox.objects.values_list("pk", flat=True)) == [first.pk]
    assert {c.id for c in engine().managed_containers()} == containers
    second = start_sandbox(other_learner)  # 256 + 256 MB: exactly the budget
    assert second.state == Sandbox.State.RUNNING


@pytest.mark.parametrize("limit", ["count", "memory"])
def test_concurrent_requests_of_different_learners_never_pass_the_hosts_limits(limit, transactional_db,
                                                                                django_user_model, settings,
                                                                                monkeypatch):
    # Room for two sandboxes, by count or by memory; six learners ask at the same moment.
    room = {"MAX_PER_HOST": 2} if limit == "count" else _budget_for(settings, sandboxes=2)
    settings.SANDCLOUD = {**settings.SANDCLOUD, "WARM_POOL_SIZE": 0, **room}
    learners = [django_user_model.objects.create_user(f"learner{n}") for n in range(6)]
    # Only admission is under test: no worker starts the admitted ones.
    monkeypatch.setattr(services, "_after_cold_request", lambda sandbox_id: None)
    create = services._sandbox_create

    def slow_create(fields, *, pick_uid):
        time.sleep(0.3)  # between the check and the insert, as on a busy database: every unserialized check passes
        return create(fields, pick_uid=pick_uid)

    monkeypatch.setattr(services, "_sandbox_create", slow_create)
    start, outcomes = threading.Barrier(len(learners)), []

    def request(owner):
        try:
            start.wait()
            services.sandbox_request(owner=owner)
            outcomes.append("admitted")
        except services.QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()  # each thread has a connection of its own

    threads = [threading.Thread(target=request, args=(owner,)) for owner in learners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["admitted"] * 2 + ["refused"] * 4
    assert Sandbox.objects.filter(state__in=COUNTED).count() == 2
