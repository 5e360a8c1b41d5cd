"""Shared fixtures: users, the real Docker Engine and running sandboxes (created through the real services)."""
from __future__ import annotations

import pytest
from django.conf import settings

from config.celery import app as celery_app
from sandbox import services
from sandbox.engine.docker import EngineUnavailable, engine
from sandbox.models import Sandbox
from sandbox.states import ACTIVE


def pytest_configure(config):
    # In-process tests run tasks inline (the provisioning code is the same); the browser tests and benchmarks start a
    # real worker process instead (config/processes.py).
    celery_app.conf.task_always_eager = True
    # Failures surface as the state and message the learner sees, which is what the tests assert on.
    celery_app.conf.task_eager_propagates = False


# --- Parallel runs (ops/test.sh: pytest-xdist, whole files to each process) ------------------------------------------

# ops/test.sh runs these last, by themselves (node id prefixes: a file, or tests of one), because tests running beside
# them make them fail: they measure the machine (a CPU share, throughput and latency during a flood, timeouts to the
# second) or count every container on the engine. The DNS test is here because the socket of its second dockerd's
# containerd, under a worker's longer tmp_path (.../popen-gw1/test_a_resolver_on_the_hosts_l0/exec/containerd/
# containerd.sock.ttrpc), passes the 107 characters a Unix socket's path may have.
RUN_ALONE = (
    "tests/security/test_dns.py::test_a_resolver_on_the_hosts_loopback_answers_no_sandbox",
    "tests/security/test_resources.py",
    "tests/security/test_streams.py",
    "tests/functions/test_failures.py::test_an_endless_loop_times_out_at_the_configured_time",
    "tests/functions/test_failures.py::test_an_init_that_passes_the_init_limit_is_reported_as_an_init_timeout",
    "tests/functions/test_failures.py::test_a_fork_bomb_is_contained_and_another_learners_function_keeps_answering",
    "tests/dockerproxy/test_hostile_requests.py::test_a_json_body_over_the_cap_is_refused_before_the_engine",
    "tests/dockerproxy/test_hostile_requests.py::test_malformed_framing_is_answered_400_and_the_connection_closed",
    # Races made on purpose (two provisions of one sandbox at once; an exec's TTY torn down), which lost their
    # container to timing once each in clean-clone runs with the other processes busy.
    "tests/sandbox/test_services.py::test_provisioning_the_same_sandbox_twice_at_once_ends_running_with_one_container",
    "tests/dockerproxy/test_streams.py::test_exec_it_gets_a_terminal",
    # The front page's player did not appear within 40 s in two clean-clone runs with the other processes busy (it
    # passes under four busy loops alone); the test now says what the page reported if it happens again.
    "tests/browser/test_class_journey.py",
)


def pytest_itemcollected(item):
    # Here rather than in pytest_collection_modifyitems, where `-m` may already have deselected by marker.
    if item.nodeid.startswith(RUN_ALONE):
        item.add_marker(pytest.mark.run_alone)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test drives consumers from a new event loop (async_to_sync), while channels_redis binds its receive locks
    to the loop that first used them: a layer per test keeps one test's loop out of the next one's locks."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(scope="session")
def docker_engine():
    try:
        engine().ping()
    except EngineUnavailable as error:
        pytest.fail(f"the Docker Engine must be running for integration tests (make test starts it): {error.detail}")
    for image in (settings.SANDCLOUD["WORKSTATION_IMAGE"], settings.SANDCLOUD["PYTHON_IMAGE"]):
        if not engine().has_image(image):
            pytest.fail(f"image {image} is missing: run `python manage.py sandbox images` (make test does)")
    return engine()


@pytest.fixture
def learner(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw-ada")


@pytest.fixture
def other_learner(django_user_model):
    return django_user_model.objects.create_user("grace", password="pw-grace")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("ines", password="pw-ines", is_staff=True)


@pytest.fixture
def instructor(django_user_model, learner):
    """A staff member who teaches a cohort that `learner` has joined."""
    from cohorts.services import cohort_create, cohort_join

    teacher = django_user_model.objects.create_user("maria", password="pw-maria", is_staff=True)
    cohort = cohort_create(instructor=teacher, name="Morning cohort")
    cohort_join(learner=learner, invite_code=cohort.invite_code)
    return teacher


@pytest.fixture
def start_sandbox(transactional_db, docker_engine):
    """Starts sandboxes through sandbox_request (tasks run inline) and removes them all afterwards."""
    created: list[int] = []

    def start(owner, **kwargs) -> Sandbox:
        sandbox = services.sandbox_request(owner=owner, **kwargs)
        created.append(sandbox.pk)
        sandbox.refresh_from_db()
        assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
        return sandbox

    yield start
    for sandbox in Sandbox.objects.filter(pk__in=created, state__in=ACTIVE):
        services.sandbox_stop(sandbox_id=sandbox.pk)
    services.warm_pool_drain()


def run_in(sandbox: Sandbox, script: str, timeout: int = 30) -> tuple[int, str]:
    """Runs a shell script in the sandbox as its learner."""
    return services.sandbox_exec(sandbox=sandbox, command=["bash", "-c", script], timeout=timeout)
