"""Class sessions: an instructor schedules one, the lab's warm pool fills ahead within the memory budget, learners
claim prepared sandboxes that are indistinguishable from cold ones, and the surplus is drained afterwards."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from cohorts.models import ClassSession
from cohorts.services import CohortError, class_session_cancel, class_session_schedule, cohort_join
from labs.models import Lab
from labs.services import lab_environment, lab_start, labs_load
from sandbox import services as sandbox_services
from sandbox.engine.docker import engine
from sandbox.models import PoolReservation, Sandbox, WarmContainer
from sandbox.pools.services import pool_levels, pools_drain, pools_tend
from tests.conftest import run_in
from tests.labs.conftest import PRACTICE_LAB, lab_folder_write, lab_sandboxes  # noqa: F401 - fixtures

pytestmark = pytest.mark.docker

CLASS_LAB = PRACTICE_LAB.replace("  runtime: runc\n", "  runtime: runc\n  memory_mb: 192\n  pids: 96\n")


@pytest.fixture
def class_lab(tmp_path) -> Lab:
    lab_folder_write(tmp_path, "practice", CLASS_LAB)
    report = labs_load(root=tmp_path)
    assert not report.errors, report.errors
    return Lab.objects.get(slug="practice")


@pytest.fixture
def cohort(instructor, learner, other_learner):
    taught = instructor.cohorts_taught.get()
    cohort_join(learner=other_learner, invite_code=taught.invite_code)
    return taught


@pytest.fixture
def pools(lab_sandboxes):
    yield
    pools_drain()


def schedule(instructor, cohort, lab, *, in_minutes: float = 1, **kwargs):
    return class_session_schedule(instructor=instructor, cohort=cohort, lab=lab,
                                  starts_at=timezone.now() + timedelta(minutes=in_minutes), **kwargs)


def test_a_session_reserves_the_labs_profile_for_the_whole_cohort(pools, instructor, cohort, class_lab):
    scheduled = schedule(instructor, cohort, class_lab, in_minutes=60, minutes=45)

    session = scheduled.session
    reservation = session.reservation
    assert session.expected_learners == 2 and scheduled.preparable is None
    assert reservation.profile_key == lab_environment(class_lab).profile.key
    assert "192MB" in reservation.profile_key
    lead = timedelta(minutes=settings.SANDCLOUD["CLASS_LEAD_MINUTES"])
    assert reservation.ramp_from == session.starts_at - lead and reservation.until == session.ends_at
    assert pools_tend().started.get(reservation.profile_key, 0) == 0  # nothing starts before the lead time


def test_a_session_in_the_past_is_refused(pools, instructor, cohort, class_lab):
    with pytest.raises(CohortError, match="already passed"):
        schedule(instructor, cohort, class_lab, in_minutes=-10)
    assert not ClassSession.objects.exists() and not PoolReservation.objects.exists()


def test_overlapping_sessions_for_one_cohort_are_refused_with_the_other_one_named(pools, instructor, cohort,
                                                                                   class_lab):
    schedule(instructor, cohort, class_lab, in_minutes=30, minutes=60)

    with pytest.raises(CohortError, match="already has a class session then: Practice"):
        schedule(instructor, cohort, class_lab, in_minutes=60, minutes=30)
    assert ClassSession.objects.count() == 1


def test_a_lab_whose_image_is_missing_is_refused_before_anything_is_reserved(pools, instructor, cohort, class_lab):
    Lab.objects.filter(pk=class_lab.pk).update(environment={**class_lab.environment, "image": "sandcloud/nope:1"})
    class_lab.refresh_from_db()

    with pytest.raises(CohortError, match="sandcloud/nope:1 is not built"):
        schedule(instructor, cohort, class_lab)
    assert not PoolReservation.objects.exists()


def test_only_the_cohorts_instructor_schedules(pools, cohort, class_lab, staff_user):
    with pytest.raises(PermissionDenied):
        schedule(staff_user, cohort, class_lab)


def test_the_pool_fills_ahead_and_a_learner_gets_a_prepared_sandbox_that_is_fully_theirs(pools, instructor, cohort,
                                                                                         class_lab, learner):
    # Given a session starting within the lead time: its pool wants every expected sandbox now.
    session = schedule(instructor, cohort, class_lab).session
    report = pools_tend()
    key = session.reservation.profile_key
    assert report.started[key] == 2 and pool_levels()[key] == 2

    # When a learner starts the lab
    sandbox = lab_start(user=learner, lab=class_lab)

    # Then they got a prepared one, with the lab's limits, their network, their name, and the step's setup
    sandbox.refresh_from_db()
    assert sandbox.from_warm_pool and sandbox.state == Sandbox.State.RUNNING
    attrs = engine().api.inspect_container(sandbox.container_id)
    assert attrs["HostConfig"]["Memory"] == 192 * 1024 * 1024 and attrs["HostConfig"]["PidsLimit"] == 96
    assert attrs["Name"].lstrip("/") == f"sandcloud-{settings.SANDCLOUD['INSTANCE']}-sandbox-{sandbox.pk}"
    networks = set(attrs["NetworkSettings"]["Networks"])
    assert any(str(learner.pk) in name for name in networks) and not any(name.endswith("-pool") for name in networks)
    assert run_in(sandbox, "test -d ~/answers && cat ~/.aws/config | grep -c endpoint_url")[0] == 0
    # and the pool keeps one for the learner still to come: the claim is not refilled beyond the expected class
    pools_tend()
    assert pool_levels()[key] == 1


def test_the_dashboard_shows_the_session_its_pool_and_how_starts_were_served(pools, instructor, cohort, class_lab,
                                                                            learner):
    schedule(instructor, cohort, class_lab)
    pools_tend()
    lab_start(user=learner, lab=class_lab)
    client = Client()
    client.force_login(instructor)

    page = client.get(f"/cohorts/{cohort.pk}/class-sessions/").content.decode()

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert 'data-status="preparing"' in page  # it starts in a minute: within its lead time
    assert "1 of 1" in text and "1 instant · 0 waited" in text


def test_what_the_memory_budget_cannot_hold_is_told_to_the_instructor(pools, instructor, cohort, class_lab,
                                                                      monkeypatch):
    committed = sandbox_services.memory_committed_mb()
    monkeypatch.setattr(sandbox_services, "host_memory_budget_mb", lambda: committed + 192 + 100)

    scheduled = schedule(instructor, cohort, class_lab)
    report = pools_tend()

    key = scheduled.session.reservation.profile_key
    assert scheduled.preparable == 1
    assert report.started[key] == 1 and report.short[key] == 1
    assert PoolReservation.objects.get().short == 1


def test_after_the_session_and_after_a_cancel_the_surplus_is_drained(pools, instructor, cohort, class_lab):
    session = schedule(instructor, cohort, class_lab).session
    pools_tend()
    key = session.reservation.profile_key
    ids = list(WarmContainer.objects.filter(profile_key=key).values_list("container_id", flat=True))
    assert len(ids) == 2

    class_session_cancel(instructor=instructor, session=session)
    report = pools_tend()

    assert report.removed[key] == 2 and pool_levels().get(key, 0) == 0
    assert all(engine().state(container_id) is None for container_id in ids)


def test_pool_containers_killed_by_an_engine_restart_are_removed_and_replaced(pools, instructor, cohort, class_lab):
    session = schedule(instructor, cohort, class_lab).session
    pools_tend()
    key = session.reservation.profile_key
    dead = list(WarmContainer.objects.filter(profile_key=key).values_list("container_id", flat=True))
    for container_id in dead:  # what a dockerd restart does to containers without a restart policy
        engine().api.kill(container_id)

    sandbox_services.sandbox_reap()
    pools_tend()

    assert all(engine().state(container_id) is None for container_id in dead)
    fresh = set(WarmContainer.objects.filter(profile_key=key).values_list("container_id", flat=True))
    assert len(fresh) == 2 and not fresh & set(dead)
    assert all(engine().state(container_id).running for container_id in fresh)


def test_a_gvisor_labs_pool_serves_gvisor_sandboxes(pools, instructor, cohort, tmp_path, learner):
    # gVisor's own threads count against the pids limit: a runsc lab keeps the default one.
    lab_folder_write(tmp_path, "practice", CLASS_LAB.replace("runtime: runc", "runtime: runsc").replace("  pids: 96\n", ""))
    assert not labs_load(root=tmp_path).errors
    lab = Lab.objects.get(slug="practice")
    schedule(instructor, cohort, lab, expected=1)
    assert pools_tend().started_total == 1

    sandbox = lab_start(user=learner, lab=lab)

    sandbox.refresh_from_db()
    assert sandbox.from_warm_pool and sandbox.runtime == "runsc"
    code, output = run_in(sandbox, "uname -r; test -d ~/answers")  # ls uses statx, which this gVisor lacks
    assert code == 0 and output.startswith("4.4.0"), output


def test_the_default_pool_grows_with_demand_and_stays_within_its_cap(pools, learner, other_learner, monkeypatch,
                                                                     start_sandbox):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 0)
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_MAX", 2)
    for owner in (learner, learner, other_learner):
        start_sandbox(owner)

    report = pools_tend()

    assert max(report.targets.values()) == 2  # three starts in the last minute, capped at 2
    assert sum(report.started.values()) == 2


def test_a_class_pool_behind_its_ramp_gets_the_next_pass_at_once_not_at_the_next_beat(pools, instructor, cohort,
                                                                                     class_lab, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_BATCH", 1)
    key = schedule(instructor, cohort, class_lab).session.reservation.profile_key

    sandbox_services.warm_pool_fill()  # one pass starts one, and queues the next (run inline here)

    assert pool_levels()[key] == 2


def test_a_learner_whose_early_sandbox_was_stopped_still_gets_a_prepared_one(pools, instructor, cohort, class_lab,
                                                                            learner):
    session = schedule(instructor, cohort, class_lab).session
    early = lab_start(user=learner, lab=class_lab)  # during the lead time, then stopped
    sandbox_services.sandbox_stop(sandbox_id=early.pk)

    pools_tend()

    assert pool_levels()[session.reservation.profile_key] == 2
