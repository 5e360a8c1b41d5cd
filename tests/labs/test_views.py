"""The lab pages: catalogue with progress, the lab page, check/hint actions, and attempts visible only to their learner."""
from __future__ import annotations

import pytest

from labs.models import Attempt, Lab
from labs.services import labs_load
from sandbox.models import Sandbox


@pytest.fixture
def labs(db):
    labs_load()
    return Lab.objects.all()


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client
    return login


def test_the_catalogue_lists_every_lab_with_the_learners_progress(labs, learner, client_of):
    lab = Lab.objects.get(slug="containers-are-processes")
    step = lab.steps.get(position=1)
    Attempt.objects.create(user=learner, lab=lab, step=step, status=Attempt.Status.PASSED, passed=True, points=10)

    page = client_of(learner).get("/labs/").content.decode()

    for title in ("Containers are processes", "Containers vs a VM-like sandbox: gVisor", "Resource limits"):
        assert title in page
    assert "1 of 4 steps" in page and "10 / 50 points" in page
    assert "<code>uname -r</code>" in page and "`uname -r`" not in page  # summaries are Markdown, rendered


def test_the_lab_page_shows_the_current_steps_instructions_and_a_start_button(labs, learner, client_of):
    page = client_of(learner).get("/labs/containers-are-processes/").content.decode()

    assert "Start a process and find its PID" in page
    assert 'class="sc-run"' in page and 'data-run="sleep 4242 &amp;"' in page
    assert 'id="lab-start"' in page


def test_a_locked_step_is_not_shown_even_when_asked_for(labs, learner, client_of):
    page = client_of(learner).get("/labs/containers-are-processes/?step=kernel-version").content.decode()
    assert "Start a process and find its PID</h2>" in page
    assert "Whose kernel is this?</h2>" not in page


def test_hints_are_revealed_one_by_one_from_the_page(labs, learner, client_of):
    client = client_of(learner)
    url = "/labs/containers-are-processes/steps/background-process/hint/"

    first = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    second = client.post(url, HTTP_HX_REQUEST="true").content.decode()

    assert "Hint 1:" in first and "Hint 2:" not in first
    assert "Hint 2:" in second and "Show a hint" not in second
    # Hints are Markdown, rendered (and sanitised) like the instructions: code reads as code, not as backticks.
    assert "<code>$!</code>" in first and "`$!`" not in first


def test_checking_without_a_sandbox_says_to_start_one(labs, learner, client_of):
    page = client_of(learner).post("/labs/containers-are-processes/steps/background-process/check/",
                                   HTTP_HX_REQUEST="true").content.decode()
    assert "Start the lab&#x27;s sandbox first." in page


def test_learners_see_their_own_attempts_and_nobody_elses(labs, learner, other_learner, staff_user, instructor,
                                                          client_of):
    lab = Lab.objects.get(slug="resource-limits")
    attempt = Attempt.objects.create(user=learner, lab=lab, step=lab.steps.get(position=1),
                                     status=Attempt.Status.FAILED, message="nothing was killed yet",
                                     output="hidden detail")
    url = f"/labs/attempts/{attempt.pk}/"

    own = client_of(learner).get(url)
    assert own.status_code == 200 and "nothing was killed yet" in own.content.decode()
    assert "hidden detail" not in own.content.decode()
    assert client_of(other_learner).get(url).status_code == 403
    assert client_of(staff_user).get(url).status_code == 403  # staff, but not this learner's instructor
    assert client_of(instructor).get(url).status_code == 200


def test_pages_need_a_login(labs, client):
    assert client.get("/labs/").status_code == 302


@pytest.mark.docker
def test_starting_a_lab_opens_its_terminal_and_a_check_shows_its_result(lab_sandboxes, learner, client_of):
    labs_load()
    client = client_of(learner)

    started = client.post("/labs/containers-are-processes/start/")
    page = client.get(started.url).content.decode()
    checked = client.post("/labs/containers-are-processes/steps/background-process/check/",
                          HTTP_HX_REQUEST="true").content.decode()

    sandbox = Sandbox.objects.get(owner=learner, lab_slug="containers-are-processes")
    assert sandbox.state == Sandbox.State.RUNNING and sandbox.runtime == "runc" and sandbox.pids_limit == 128
    assert 'id="sandbox-page"' in page and f'data-terminal-path="/ws/sandboxes/{sandbox.pk}/terminal/"' in page
    assert "data-expires-at" in page
    assert "Not yet" in checked and "~/answers/sleep.pid is missing or empty." in checked


@pytest.mark.docker
def test_resetting_a_step_while_the_engine_is_down_is_a_page_not_a_server_error(lab_sandboxes, learner, client_of,
                                                                                 monkeypatch):
    from django.conf import settings

    from sandbox.engine import docker as docker_module
    from sandbox.engine.docker import DockerEngine

    labs_load()
    client = client_of(learner)
    client.post("/labs/containers-are-processes/start/")
    old = Sandbox.objects.get(owner=learner, lab_slug="containers-are-processes")
    # Given the container engine stops answering (only for the reset: the sandboxes are cleaned up afterwards)
    unreachable = DockerEngine(url="unix:///run/sandcloud-no-such-docker.sock", timeout=2,
                               instance=settings.SANDCLOUD["INSTANCE"])
    with monkeypatch.context() as engine_down:
        engine_down.setattr(docker_module, "_engine", unreachable)

        # When the learner resets their step
        response = client.post("/labs/containers-are-processes/steps/background-process/reset/", follow=True)

    # Then they are back on the lab page with a message, and the old sandbox is on its way out
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/labs/containers-are-processes/?step=background-process"
    assert "A fresh sandbox is starting with this step set up again." in response.content.decode()
    old.refresh_from_db()
    assert old.state != Sandbox.State.RUNNING
