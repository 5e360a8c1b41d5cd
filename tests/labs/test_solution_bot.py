"""The solution bot: in a real sandbox, every step's check fails before its solution runs and passes after it."""
from __future__ import annotations

import pytest

from config.processes import EdgeListener, running_edge, worker_start
from labs.format import CONTENT_DIR
from labs.models import Attempt, Lab
from labs.selectors import lab_progress_for
from labs.services import attempt_request, lab_start, labs_load, step_solve
from sandbox.models import Sandbox
from tests.labs.registry_and_proxy import docker_proxy_running, registry_for_labs

pytestmark = pytest.mark.docker

LAB_SLUGS = sorted(p.name for p in CONTENT_DIR.iterdir() if (p / "lab.yaml").is_file())
# Labs whose solutions use the learner's AWS account from the workstation (`aws lambda ...`, `aws ecr ...`).
AWS_LABS = {slug for slug in LAB_SLUGS if slug.startswith(("lambda-", "ecr-"))}
# Labs whose solutions use the learner's docker CLI (the Docker proxy; ECR's registry behind it).
DOCKER_LABS = {slug for slug in LAB_SLUGS if slug.startswith(("docker-", "ecr-"))}


@pytest.fixture(scope="module")
def registry_platform(django_db_setup, live_server, tmp_path_factory):
    """ECR's registry, asking the live server for tokens: the edge names it in repository URIs and the proxy pushes
    to it."""
    with registry_for_labs(token_url=live_server.url + "/registry/token",
                           directory=tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture(scope="module")
def lambda_platform(django_db_setup, docker_engine, registry_platform, tmp_path_factory):
    """What a running Sandcloud has behind a learner's `aws` CLI: the AWS edge listener the workstation calls, and a
    Celery worker for the work the edge queues (provisioned concurrency's environments, asynchronous invocations,
    retiring old environments). Both share the test database and a code store of their own, and know ECR's registry."""
    code_dir = str(tmp_path_factory.mktemp("function-code"))
    with running_edge(env={"SANDCLOUD_FUNCTIONS_CODE_DIR": code_dir, **registry_platform.env}) as edge:
        worker = worker_start(env={"SANDCLOUD_AWS_EDGE_PORT": str(edge.port),
                                   "SANDCLOUD_FUNCTIONS_CODE_DIR": code_dir, **registry_platform.env}, concurrency=1)
        try:
            yield edge, code_dir
        finally:
            worker.stop()


@pytest.fixture
def aws_account_platform(request, settings):
    """For an AWS lab: the edge and worker running, this process pointed at them (its sandboxes' ~/.aws, and the
    functions a schedule fired from here invokes), and every function environment removed afterwards."""
    if request.node.callspec.params["slug"] not in AWS_LABS:
        yield None
        return
    edge, code_dir = request.getfixturevalue("lambda_platform")
    edge: EdgeListener
    for name, value in edge.settings.items():
        setattr(settings, name, value)
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "CODE_DIR": code_dir}
    yield edge
    from sandbox.functions import reaper
    from sandbox.functions.models import ExecutionEnvironment
    from sandbox.functions.records import records_flush

    records_flush()
    reaper.environments_remove(rows=list(ExecutionEnvironment.objects.all()))


@pytest.fixture(scope="module")
def docker_platform(django_db_setup, docker_engine, registry_platform):
    """The learner's docker CLI: `manage.py dockerproxy` serving the directory workstations mount their socket from
    (SANDCLOUD_DOCKER_PROXY["DIR"]), pushing to the test registry; what learners made is removed afterwards."""
    with docker_proxy_running(env=registry_platform.env):
        yield


@pytest.fixture
def docker_lab_platform(request, settings):
    """For a lab that uses docker: the proxy running, and this process (the live server's token service, the checks)
    pointed at the test registry."""
    if request.node.callspec.params["slug"] not in DOCKER_LABS:
        yield None
        return
    registry = request.getfixturevalue("registry_platform")
    request.getfixturevalue("docker_platform")
    settings.SANDCLOUD_REGISTRY = {**settings.SANDCLOUD_REGISTRY, **registry.settings}
    yield registry


def platform_clock_tick() -> None:
    """What Celery beat would have done while a learner read the step: fire the schedules that are due (a rate()
    schedule is due as soon as it is made). The tests run no beat, so the bot runs its dispatcher before each
    solution; firings run inline here, and their records are written before the solution reads the log."""
    from sandbox.functions.records import records_flush
    from sandbox.scheduler.services import schedules_dispatch

    schedules_dispatch()
    records_flush()


def test_every_lab_folder_loads(db):
    report = labs_load()
    assert not report.errors, "\n".join(map(str, report.errors))
    assert sorted(report.created + report.updated + report.unchanged) == LAB_SLUGS


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_solutions_pass_every_check_that_failed_before_them(slug, lab_sandboxes, docker_lab_platform,
                                                           aws_account_platform, learner):
    labs_load()
    lab = Lab.objects.get(slug=slug)
    sandbox = lab_start(user=learner, lab=lab)
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert sandbox.runtime == lab.runtime

    for step in lab.steps.filter(is_active=True).order_by("position"):
        before = attempt_request(user=learner, sandbox=sandbox, step=step)
        before.refresh_from_db()
        assert before.status == Attempt.Status.FAILED, (
            f"{slug}/{step.slug}: the check must fail before the solution, got {before.status}: {before.message}")
        assert before.message, f"{slug}/{step.slug}: a failing check should tell the learner something"

        platform_clock_tick()
        exit_code, output = step_solve(sandbox=sandbox, step=step)
        assert exit_code == 0, f"{slug}/{step.slug}: solution exited {exit_code}: {output}"

        after = attempt_request(user=learner, sandbox=sandbox, step=step)
        after.refresh_from_db()
        assert after.status == Attempt.Status.PASSED, (
            f"{slug}/{step.slug}: the check must pass after the solution: {after.message}\n{after.output}\n"
            f"The solution printed: {output[-3000:]}")

    progress = lab_progress_for(user=learner, lab=lab)
    assert progress.completed
    assert progress.points > 0
