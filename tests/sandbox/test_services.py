"""Sandbox services against the real Docker Engine: provisioning, warm pool, quotas, stop, reaper, failures."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from sandbox import services
from sandbox.engine import docker as docker_module
from sandbox.engine.docker import DockerEngine, EngineError, engine
from sandbox.engine.images import LEARNER_GID
from sandbox.models import Sandbox, WarmContainer
from sandbox.policy import ContainerSpec, container_name, labels_for, learner_network_name, workstation_command
from sandbox.states import State
from tests.conftest import run_in

INSTANCE = settings.SANDCLOUD["INSTANCE"]


def test_a_cold_sandbox_is_a_labelled_container_on_the_learners_own_network(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    attrs = engine().api.inspect_container(sandbox.container_id)
    assert attrs["State"]["Running"]
    assert attrs["Config"]["Labels"]["sandcloud.sandbox"] == str(sandbox.pk)
    assert attrs["Config"]["Labels"]["sandcloud.owner"] == "ada"
    assert list(attrs["NetworkSettings"]["Networks"]) == [learner_network_name(INSTANCE, learner.pk)]
    network = engine().api.inspect_network(learner_network_name(INSTANCE, learner.pk))
    assert network["Internal"] is True


def test_provisioning_twice_does_not_create_a_second_container(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    Sandbox.objects.filter(pk=sandbox.pk).update(state=State.PROVISIONING)
    services.sandbox_provision(sandbox_id=sandbox.pk)
    sandbox.refresh_from_db()
    containers = engine().api.containers(filters={"label": f"sandcloud.sandbox={sandbox.pk}"})
    assert [c["Id"] for c in containers] == [sandbox.container_id]
    assert sandbox.state == State.RUNNING


def test_a_warm_container_is_claimed_instantly_then_moved_to_the_learners_network(start_sandbox, learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    warm_id = WarmContainer.objects.get().container_id
    sandbox = start_sandbox(learner)
    assert sandbox.from_warm_pool and sandbox.container_id == warm_id
    attrs = engine().api.inspect_container(warm_id)
    assert attrs["Name"] == "/" + container_name(INSTANCE, sandbox.pk)
    assert list(attrs["NetworkSettings"]["Networks"]) == [learner_network_name(INSTANCE, learner.pk)]
    # The claim refilled the pool with a fresh container, never the same one.
    assert WarmContainer.objects.exclude(container_id=warm_id).count() == 1
    assert run_in(sandbox, "whoami")[1].strip() == "learner"


def test_the_per_learner_quota_refuses_with_a_message(start_sandbox, learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "MAX_PER_LEARNER", 1)
    start_sandbox(learner)
    with pytest.raises(services.QuotaExceeded, match="Stop one before starting another"):
        services.sandbox_request(owner=learner)


def test_the_per_host_quota_refuses_everybody_when_full(start_sandbox, learner, other_learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "MAX_PER_HOST", 1)
    start_sandbox(learner)
    with pytest.raises(services.QuotaExceeded, match="capacity"):
        services.sandbox_request(owner=other_learner)


def test_stopping_removes_the_container_and_the_empty_learner_network(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    services.sandbox_stop(sandbox_id=sandbox.pk)
    sandbox.refresh_from_db()
    assert sandbox.state == State.STOPPED and sandbox.ended_at is not None
    assert engine().state(sandbox.container_id) is None
    assert not engine().api.networks(names=[learner_network_name(INSTANCE, learner.pk)])


def test_exec_into_a_stopped_sandbox_says_so(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    services.sandbox_stop(sandbox_id=sandbox.pk)
    with pytest.raises(services.SandboxNotRunning, match="This sandbox is stopped"):
        services.sandbox_exec(sandbox=sandbox, command=["true"])


def test_a_missing_image_fails_the_sandbox_with_an_operator_hint(transactional_db, docker_engine, learner):
    sandbox = services.sandbox_request(owner=learner, image="sandcloud/not-built:0")
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED
    assert "has not been built" in sandbox.failure_reason and "sandbox images" in sandbox.failure_reason


def test_docker_down_fails_the_sandbox_after_retries_in_plain_words(transactional_db, learner, monkeypatch):
    unreachable = DockerEngine(url="unix:///run/sandcloud-no-such-docker.sock", timeout=2, instance=INSTANCE)
    monkeypatch.setattr(docker_module, "_engine", unreachable)
    sandbox = services.sandbox_request(owner=learner)
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED
    assert sandbox.failure_reason == "The container engine is not reachable right now. Please try again in a minute."


def test_gvisor_sandboxes_run_on_gvisors_own_kernel(start_sandbox, learner):
    sandbox = start_sandbox(learner, runtime="runsc")
    exit_code, output = run_in(sandbox, "uname -r")
    assert exit_code == 0 and output.strip() == "4.4.0"
    host_kernel = engine().client.info()["KernelVersion"]
    assert host_kernel != "4.4.0"


def test_the_reaper_expires_sandboxes_past_their_time_limit(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    Sandbox.objects.filter(pk=sandbox.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    counts = services.sandbox_reap()
    sandbox.refresh_from_db()
    assert counts["expired"] == 1
    assert sandbox.state == State.EXPIRED and "time limit" in sandbox.failure_reason
    assert engine().state(sandbox.container_id) is None


def test_the_reaper_stops_idle_sandboxes(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    idle = timedelta(minutes=settings.SANDCLOUD["IDLE_MINUTES"] + 1)
    Sandbox.objects.filter(pk=sandbox.pk).update(last_active_at=timezone.now() - idle)
    services.sandbox_reap()
    sandbox.refresh_from_db()
    assert sandbox.state == State.EXPIRED and "idle" in sandbox.failure_reason


def test_activity_keeps_a_sandbox_alive(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    idle = timedelta(minutes=settings.SANDCLOUD["IDLE_MINUTES"] + 1)
    Sandbox.objects.filter(pk=sandbox.pk).update(last_active_at=timezone.now() - idle)
    services.sandbox_touch(sandbox_id=sandbox.pk)
    services.sandbox_reap()
    sandbox.refresh_from_db()
    assert sandbox.state == State.RUNNING


def test_the_reaper_marks_a_sandbox_whose_container_died_as_failed(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    engine().api.kill(sandbox.container_id)
    services.sandbox_reap()
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED and "stopped unexpectedly" in sandbox.failure_reason
    assert engine().state(sandbox.container_id) is None


def test_a_worker_killed_mid_provisioning_leaves_no_orphan_after_the_reaper(transactional_db, docker_engine, learner,
                                                                            monkeypatch):
    # Given a row stuck in provisioning whose worker died right after creating the container.
    monkeypatch.setitem(settings.SANDCLOUD, "PROVISION_STUCK_SECONDS", 0)
    sandbox = Sandbox.objects.create(owner=learner, image=settings.SANDCLOUD["WORKSTATION_IMAGE"], memory_mb=64,
                                     cpus=0.2, pids_limit=32, uid=20999, state=State.PROVISIONING,
                                     expires_at=timezone.now() + timedelta(hours=1))
    spec = ContainerSpec(name=container_name(INSTANCE, sandbox.pk), image=sandbox.image, uid=20999, gid=LEARNER_GID,
                         labels=labels_for(INSTANCE, sandbox_id=sandbox.pk, owner="ada"),
                         limits=services.default_limits(), command=workstation_command())
    container_id = engine().run(spec)
    # When the reaper runs.
    services.sandbox_reap()
    # Then the container is gone and the learner is told.
    sandbox.refresh_from_db()
    assert engine().state(container_id) is None
    assert sandbox.state == State.FAILED and "took too long" in sandbox.failure_reason


def test_the_reaper_removes_containers_nobody_owns(transactional_db, docker_engine, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS", 0)
    spec = ContainerSpec(name=f"sandcloud-{INSTANCE}-sandbox-999999", image=settings.SANDCLOUD["WORKSTATION_IMAGE"],
                         uid=20998, gid=LEARNER_GID, labels=labels_for(INSTANCE, sandbox_id=999999, owner="ghost"),
                         limits=services.default_limits(), command=workstation_command())
    container_id = engine().run(spec)
    counts = services.sandbox_reap()
    assert counts["orphans"] >= 1
    assert engine().state(container_id) is None


def test_two_starts_at_once_share_the_learners_new_network(transactional_db, docker_engine, learner):
    from concurrent.futures import ThreadPoolExecutor

    name = learner_network_name(INSTANCE, learner.pk)
    subnets = services._subnets(name)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lambda _: engine().ensure_network(name, labels=labels_for(INSTANCE, owner="x"),
                                                                  subnets=subnets), range(4)))
        assert len(set(ids)) == 1
    finally:
        engine().remove_network(name)


def test_provisioning_the_same_sandbox_twice_at_once_ends_running_with_one_container(transactional_db, docker_engine,
                                                                                    learner):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    sandbox = Sandbox.objects.create(owner=learner, image=settings.SANDCLOUD["WORKSTATION_IMAGE"], memory_mb=64,
                                     cpus=0.2, pids_limit=32, uid=24990,
                                     expires_at=timezone.now() + timedelta(hours=1))

    def provision(_):
        try:
            return services.sandbox_provision(sandbox_id=sandbox.pk).pk
        finally:
            connection.close()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(provision, range(2)))
        sandbox.refresh_from_db()
        assert sandbox.state == State.RUNNING, sandbox.failure_reason
        containers = engine().api.containers(filters={"label": f"sandcloud.sandbox={sandbox.pk}"})
        assert [c["Id"] for c in containers] == [sandbox.container_id]
    finally:
        services.sandbox_stop(sandbox_id=sandbox.pk)


def test_a_stop_that_met_an_engine_outage_is_finished_by_the_reaper(start_sandbox, learner, monkeypatch):
    sandbox = start_sandbox(learner)
    monkeypatch.setitem(settings.SANDCLOUD, "PROVISION_STUCK_SECONDS", 0)
    # The stop task gave up: the row says stopping, the container still runs.
    Sandbox.objects.filter(pk=sandbox.pk).update(state=State.STOPPING,
                                                 state_changed_at=timezone.now() - timedelta(minutes=5))
    services.sandbox_reap()
    sandbox.refresh_from_db()
    assert sandbox.state == State.STOPPED
    assert engine().state(sandbox.container_id) is None


def test_the_reaper_removes_a_learner_network_nobody_uses(transactional_db, docker_engine, learner):
    name = services._learner_network(learner.pk)
    services.sandbox_reap()
    assert not engine().api.networks(names=[name])


def test_two_live_sandboxes_never_share_a_uid(transactional_db, learner, other_learner):
    from django.db import IntegrityError

    values = dict(image="img", memory_mb=64, cpus=0.2, pids_limit=32, uid=24000,
                  expires_at=timezone.now() + timedelta(hours=1))
    Sandbox.objects.create(owner=learner, state=State.RUNNING, **values)
    Sandbox.objects.create(owner=other_learner, state=State.STOPPED, **values)  # ended rows may repeat it
    with pytest.raises(IntegrityError):
        Sandbox.objects.create(owner=other_learner, state=State.REQUESTED, **values)


def test_an_install_never_claims_or_drains_another_installs_warm_containers(start_sandbox, learner, monkeypatch):
    # Given another install's warm container in the shared database (and engine).
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    foreign = WarmContainer.objects.create(instance="someone-else", image=settings.SANDCLOUD["WORKSTATION_IMAGE"],
                                           container_id="f" * 64, uid=20001)
    # When this install starts a sandbox with a matching request and later drains its pool.
    sandbox = start_sandbox(learner)
    services.warm_pool_drain()
    # Then the foreign container was neither claimed nor drained.
    assert not sandbox.from_warm_pool and sandbox.container_id != foreign.container_id
    assert WarmContainer.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("stop_progress", ["container removed", "container killed"])
def test_a_learners_stop_during_the_reapers_pass_ends_stopped_not_failed(start_sandbox, learner, monkeypatch,
                                                                         stop_progress):
    # Given a running sandbox, and a learner whose stop lands after the reaper read the running rows but before it
    # listed the engine's containers (the stop has moved the row to stopping and is taking the container down).
    sandbox = start_sandbox(learner)
    docker = engine()
    list_containers = docker.managed_containers

    def stop_then_list():
        stopping = Sandbox.objects.get(pk=sandbox.pk)
        assert services._transition(stopping, State.STOPPING, message="Stopping your sandbox")
        if stop_progress == "container removed":
            docker.remove(sandbox.container_id)
        else:
            docker.api.kill(sandbox.container_id)
        return list_containers()

    monkeypatch.setattr(docker, "managed_containers", stop_then_list)
    # When the reaper runs, and then the learner's stop finishes.
    counts = services.sandbox_reap()
    monkeypatch.undo()
    services.sandbox_stop(sandbox_id=sandbox.pk)
    # Then the learner sees the stop they asked for, not a failure.
    sandbox.refresh_from_db()
    assert counts["dead"] == 0
    assert sandbox.state == State.STOPPED and sandbox.failure_reason == ""
    assert engine().state(sandbox.container_id) is None


def test_the_reaper_leaves_a_start_that_finished_while_it_was_abandoning_it(transactional_db, docker_engine, learner,
                                                                            monkeypatch):
    # Given a start that looked stuck to the reaper, whose worker finishes it just before the reaper acts.
    monkeypatch.setitem(settings.SANDCLOUD, "PROVISION_STUCK_SECONDS", 0)
    sandbox = Sandbox.objects.create(owner=learner, image=settings.SANDCLOUD["WORKSTATION_IMAGE"], memory_mb=64,
                                     cpus=0.2, pids_limit=32, uid=24991, state=State.PROVISIONING,
                                     expires_at=timezone.now() + timedelta(hours=1))
    abandon = services._abandon

    def finish_then_abandon(seen):
        services.sandbox_provision(sandbox_id=sandbox.pk)
        return abandon(seen)

    monkeypatch.setattr(services, "_abandon", finish_then_abandon)
    try:
        # When the reaper runs.
        services.sandbox_reap()
        # Then the learner keeps their running sandbox and its container.
        sandbox.refresh_from_db()
        assert sandbox.state == State.RUNNING, sandbox.failure_reason
        assert engine().state(sandbox.container_id).running
    finally:
        services.sandbox_stop(sandbox_id=sandbox.pk)


def test_the_reaper_attaches_a_claimed_warm_container_whose_attach_was_lost(start_sandbox, learner, monkeypatch):
    from sandbox import tasks

    # Given a warm claim whose attach task never reached a worker (the broker lost it).
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    monkeypatch.setattr(tasks.sandbox_attach_task, "apply_async", lambda *args, **kwargs: None)
    sandbox = start_sandbox(learner)
    assert sandbox.from_warm_pool
    pool_network = f"sandcloud-{INSTANCE}-pool"
    attrs = engine().api.inspect_container(sandbox.container_id)
    assert list(attrs["NetworkSettings"]["Networks"]) == [pool_network]
    # When the reaper runs once the claim is older than its attach could take.
    monkeypatch.setitem(settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS", 0)
    counts = services.sandbox_reap()
    # Then the container is on the learner's own network under the sandbox's name, and still the learner's.
    attrs = engine().api.inspect_container(sandbox.container_id)
    assert attrs["Name"] == "/" + container_name(INSTANCE, sandbox.pk)
    assert list(attrs["NetworkSettings"]["Networks"]) == [learner_network_name(INSTANCE, learner.pk)]
    assert counts["attached"] == 1
    sandbox.refresh_from_db()
    assert sandbox.state == State.RUNNING
    assert run_in(sandbox, "whoami")[1].strip() == "learner"
    # And a later pass finds nothing left to repair.
    assert services.sandbox_reap()["attached"] == 0


def test_a_claim_waiting_for_its_attach_cannot_reach_the_pools_other_containers(start_sandbox, learner, monkeypatch):
    from sandbox import tasks

    # Given a claimed container still on the holding network (its attach waits WARM_FOLLOW_UP_SECONDS), and another
    # pooled container there listening on a port.
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 2)
    assert services.warm_pool_fill() == 2
    monkeypatch.setattr(tasks.sandbox_attach_task, "apply_async", lambda *args, **kwargs: None)
    sandbox = start_sandbox(learner)
    assert sandbox.from_warm_pool
    pooled = engine().client.containers.get(WarmContainer.objects.first().container_id)  # (a refill may add more)
    address = next(iter(pooled.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    pooled.exec_run(["python3", "-m", "http.server", "8000"], detach=True)
    knock = f"timeout 2 bash -c 'echo > /dev/tcp/{address}/8000' 2>/dev/null && echo reached || echo blocked"
    up = f"for i in $(seq 50); do ({knock}) | grep -q reached && echo up && exit; sleep 0.1; done; echo down"
    assert pooled.exec_run(["bash", "-c", up]).output.decode().strip() == "up"  # it does listen
    # When the learner's container knocks, nothing answers.
    assert run_in(sandbox, knock)[1].strip() == "blocked"


def test_an_attach_that_loses_the_race_with_the_learners_stop_ends_quietly(start_sandbox, learner, other_learner,
                                                                           monkeypatch):
    from sandbox import tasks

    # Given two warm claims whose attaches have not run yet.
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 2)
    assert services.warm_pool_fill() == 2
    monkeypatch.setattr(tasks.sandbox_attach_task, "apply_async", lambda *args, **kwargs: None)
    stopped, broken = start_sandbox(learner), start_sandbox(other_learner)
    assert stopped.from_warm_pool and broken.from_warm_pool
    docker = engine()
    connect = docker.connect

    def container_gone_meanwhile(container_id, network):
        if container_id == stopped.container_id:  # the learner's stop won the race: the row says so
            Sandbox.objects.filter(pk=stopped.pk).update(state=State.STOPPING)
        docker.api.remove_container(container_id, force=True)
        return connect(container_id, network)

    monkeypatch.setattr(docker, "connect", container_gone_meanwhile)
    # When their attaches run, the engine refuses both.
    # Then the stopped sandbox's attach ends quietly: there is nothing left to attach.
    assert services.sandbox_attach(sandbox_id=stopped.pk) is False
    # And a refusal for a sandbox that is meant to be running is still an error, for the task to retry.
    with pytest.raises(EngineError):
        services.sandbox_attach(sandbox_id=broken.pk)
    Sandbox.objects.filter(pk=broken.pk).update(state=State.STOPPING)


def test_the_reaper_leaves_a_fresh_claim_to_its_own_attach_task(start_sandbox, learner, monkeypatch):
    from sandbox import tasks

    # Given a claim made a moment ago whose attach task is still on its way.
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    monkeypatch.setitem(settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS", 3600)
    assert services.warm_pool_fill() == 1
    monkeypatch.setattr(tasks.sandbox_attach_task, "apply_async", lambda *args, **kwargs: None)
    sandbox = start_sandbox(learner)
    # When the reaper runs, it does not race that task.
    assert services.sandbox_reap()["attached"] == 0
    assert engine().api.inspect_container(sandbox.container_id)["Name"] != "/" + container_name(INSTANCE, sandbox.pk)


def test_a_warm_claim_while_the_broker_is_away_still_hands_the_learner_their_sandbox(start_sandbox, learner,
                                                                                     monkeypatch):
    from config.processes import free_port
    from tests.workers.conftest import celery_broker_use

    # Given a warm container, and a broker nobody answers at (Redis restarting).
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    with celery_broker_use(f"redis://127.0.0.1:{free_port()}/0", eager=False):
        # When a learner's request claims it, its follow-up tasks cannot be queued.
        sandbox = start_sandbox(learner)
    # Then the learner has their running sandbox, and the reaper does the attach the lost task would have done.
    assert sandbox.from_warm_pool and run_in(sandbox, "whoami")[1].strip() == "learner"
    monkeypatch.setitem(settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS", 0)
    assert services.sandbox_reap()["attached"] == 1
    assert engine().api.inspect_container(sandbox.container_id)["Name"] == "/" + container_name(INSTANCE, sandbox.pk)


def test_a_cold_request_while_the_broker_is_away_fails_at_once_with_a_sentence(transactional_db, docker_engine,
                                                                               learner):
    from config.processes import free_port
    from tests.workers.conftest import celery_broker_use

    # Given a broker nobody answers at (Redis restarting), when a learner asks for a sandbox no warm one can serve,
    with celery_broker_use(f"redis://127.0.0.1:{free_port()}/0", eager=False):
        sandbox = services.sandbox_request(owner=learner)
    # then the request answers (no error page), the sandbox says at once that nobody will start it, and nothing runs.
    sandbox.refresh_from_db()
    assert sandbox.state == State.FAILED
    assert "Please start a new one" in sandbox.failure_reason
    assert engine().state(container_name(INSTANCE, sandbox.pk)) is None
