"""Nothing a learner leaves behind reaches the next learner, whether the next sandbox is new or from the warm pool."""
from __future__ import annotations

import pytest
from django.conf import settings

from sandbox import services
from sandbox.engine.docker import engine
from tests.conftest import run_in

from .observe import assert_host_and_bystander_answer

pytestmark = pytest.mark.docker

PLACES = ("/home/learner/notes.txt", "/home/learner/.bashrc", "/tmp/notes.txt", "/dev/shm/notes.txt")
LEAVE_BEHIND = " && ".join(f"echo secret-of-ada > {path}" for path in PLACES) + " && echo written"
LOOK_FOR_IT = f"cat {' '.join(PLACES)} 2>/dev/null; grep -rls secret-of-ada /home /tmp /dev/shm /var/tmp; true"


def _leave_files_and_stop(sandbox) -> None:
    assert run_in(sandbox, LEAVE_BEHIND, timeout=5) == (0, "written\n")
    services.sandbox_stop(sandbox_id=sandbox.pk)
    assert engine().state(sandbox.container_id) is None


def test_files_left_in_home_and_tmp_are_gone_for_the_next_learner(start_sandbox, learner, other_learner):
    first = start_sandbox(learner)
    _leave_files_and_stop(first)

    second = start_sandbox(other_learner)

    assert second.container_id != first.container_id
    assert run_in(second, LOOK_FOR_IT, timeout=10) == (0, "")
    assert_host_and_bystander_answer(second)


def test_files_left_behind_are_gone_when_the_next_sandbox_comes_from_the_warm_pool(start_sandbox, learner,
                                                                                  other_learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    first = start_sandbox(learner)
    assert first.from_warm_pool
    _leave_files_and_stop(first)
    services.warm_pool_fill()

    second = start_sandbox(other_learner)

    assert second.from_warm_pool
    assert second.container_id != first.container_id
    assert run_in(second, LOOK_FOR_IT, timeout=10) == (0, "")
    assert_host_and_bystander_answer(second)


def test_files_left_behind_are_gone_when_the_next_sandbox_comes_from_a_labs_own_pool(start_sandbox, learner,
                                                                                    other_learner):
    # A lab's profile (its own memory and pids) has a pool of its own: the same promise holds there.
    from sandbox.pools.profiles import Profile
    from sandbox.pools.services import _start, pools_drain

    profile = Profile(image=settings.SANDCLOUD["WORKSTATION_IMAGE"], runtime="runc", memory_mb=192, cpus=0.5, pids=96)
    limits = profile.limits(services.default_limits())
    try:
        assert _start(profile, 1) == 1
        first = start_sandbox(learner, limits=limits)
        assert first.from_warm_pool
        _leave_files_and_stop(first)
        assert _start(profile, 1) == 1

        second = start_sandbox(other_learner, limits=limits)

        assert second.from_warm_pool and second.container_id != first.container_id
        assert run_in(second, LOOK_FOR_IT, timeout=10) == (0, "")
        assert_host_and_bystander_answer(second)
    finally:
        pools_drain()
