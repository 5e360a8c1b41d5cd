"""The Docker lab's checks judge what the learner really built and ran: images built and containers started with the
real docker CLI through a real proxy, answers as files (the solution bot runs the same checks in a workstation)."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from labs.checks import CheckContext, docker_labs
from sandbox.models import Sandbox
from tests.dockerproxy.conftest import LearnerDocker, ada_docker, grace_docker, proxy_dir  # noqa: F401 - fixtures

pytestmark = pytest.mark.docker

APP = 'print("Hello from a container!")\n'
DOCKERFILE = 'FROM sandcloud/python:3.11\nWORKDIR /app\nENV PYTHONUNBUFFERED=1\nCOPY app.py .\nCMD ["python3", "app.py"]\n'


class LearnerContext(CheckContext):
    """A check's context for the learner behind `docker`: their commands run with their docker CLI, and their
    sandbox holds exactly the answer files given."""

    def __init__(self, docker: LearnerDocker, files: dict[str, str] | None = None):
        super().__init__(sandbox=Sandbox(owner=docker.user), timeout=60)
        self.docker = docker
        self.files = files or {}

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def run(self, script: str) -> tuple[int, str]:
        done = subprocess.run(["bash", "-c", script], env=self.docker.env, capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def ada(ada_docker):
    """ada's docker CLI; her `web` goes with the test (the proxy's fixture removes the rest when the module ends)."""
    yield ada_docker
    ada_docker.run("rm", "-f", "web")


def build(docker: LearnerDocker, folder: Path, *, dockerfile: str = DOCKERFILE, app: str = APP,
          tag: str = "hello:1") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "app.py").write_text(app)
    docker.ok("build", "-q", "-t", tag, str(folder))


def copy_layer_bytes(docker: LearnerDocker) -> str:
    rows = docker.ok("history", "--human=false", "--format", "{{.CreatedBy}}|{{.Size}}", "hello:1").splitlines()
    return next(row.rpartition("|")[2] for row in rows if "COPY" in row)


def web_start(docker: LearnerDocker) -> str:
    docker.ok("run", "-d", "--name", "web", "hello:1", "python3", "-m", "http.server", "8000")
    for _ in range(50):  # the server takes a moment to listen
        done = docker.run("exec", "web", "python3", "-c",
                          "import urllib.request; urllib.request.urlopen('http://localhost:8000/')")
        if done.returncode == 0:
            break
        time.sleep(0.2)
    return docker.ok("exec", "web", "cat", "/etc/hostname").strip()


# --- build -----------------------------------------------------------------------------------------------------------

def test_the_build_check_passes_for_hello_1_with_a_copy_layer(ada, tmp_path):
    build(ada, tmp_path / "hello")

    result = docker_labs.hello_built(LearnerContext(ada))

    assert result.passed, result.message


def test_the_build_check_asks_for_the_build_when_there_is_no_hello_1(ada, tmp_path):
    build(ada, tmp_path / "hello", tag="hello:2")

    result = docker_labs.hello_built(LearnerContext(ada))

    assert not result.passed
    assert "docker build -t hello:1 ." in result.message


def test_another_learners_hello_1_does_not_count(ada, grace_docker, tmp_path):
    build(grace_docker, tmp_path / "hello")

    result = docker_labs.hello_built(LearnerContext(ada))

    assert not result.passed
    assert "no image called hello:1" in result.message


def test_an_image_without_the_app_copied_in_fails_the_build_check(ada, tmp_path):
    build(ada, tmp_path / "hello", dockerfile='FROM sandcloud/python:3.11\nCMD ["python3", "app.py"]\n')

    result = docker_labs.hello_built(LearnerContext(ada))

    assert not result.passed
    assert "COPY app.py ." in result.message


# --- run -------------------------------------------------------------------------------------------------------------

def test_the_run_check_passes_when_the_answer_is_what_the_image_prints(ada, tmp_path):
    build(ada, tmp_path / "hello")
    printed = ada.ok("run", "--rm", "hello:1")

    result = docker_labs.hello_ran(LearnerContext(ada, {"~/answers/hello-output.txt": printed}))

    assert result.passed, result.message


def test_the_run_check_fails_when_the_answer_is_another_images_output(ada, tmp_path):
    build(ada, tmp_path / "hello", app='print("Hello again!")\n')

    result = docker_labs.hello_ran(LearnerContext(ada, {"~/answers/hello-output.txt":
                                                               "Hello from a container!\n"}))

    assert not result.passed
    assert "'Hello again!'" in result.message


def test_the_run_check_says_what_failed_when_the_image_cannot_run(ada, tmp_path):
    build(ada, tmp_path / "hello", dockerfile=DOCKERFILE.replace("app.py\"]", "missing.py\"]"))

    result = docker_labs.hello_ran(LearnerContext(ada, {"~/answers/hello-output.txt": "Hello\n"}))

    assert not result.passed
    assert "missing.py" in result.message and "CMD" in result.message


# --- layers ----------------------------------------------------------------------------------------------------------

def test_the_layers_check_passes_with_the_copy_layers_size_in_bytes(ada, tmp_path):
    build(ada, tmp_path / "hello")
    size = copy_layer_bytes(ada)

    result = docker_labs.hello_layers_read(LearnerContext(ada, {"~/answers/copy-layer-bytes": f"{size}\n"}))

    assert result.passed, result.message
    assert int(size) == len(APP)  # the COPY layer is exactly the file it added


def test_the_layers_check_refuses_a_metadata_rows_size(ada, tmp_path):
    build(ada, tmp_path / "hello")

    result = docker_labs.hello_layers_read(LearnerContext(ada, {"~/answers/copy-layer-bytes": "0B\n"}))

    assert not result.passed
    assert "COPY" in result.message


@pytest.mark.parametrize("text, expected", [("312", 312), ("312B", 312), ("1.23kB", 1230), ("4.5 MB", 4_500_000),
                                            ("twelve", None), ("", None)])
def test_sizes_are_read_as_docker_history_prints_them(text, expected):
    assert docker_labs.size_parse(text) == expected


# --- web -------------------------------------------------------------------------------------------------------------

def test_the_web_check_passes_for_a_running_web_with_a_request_in_its_log(ada, tmp_path):
    build(ada, tmp_path / "hello")
    hostname = web_start(ada)

    result = docker_labs.web_running(LearnerContext(ada, {"~/answers/web-hostname": hostname + "\n"}))

    assert result.passed, result.message


def test_the_web_check_fails_for_a_stopped_web(ada, tmp_path):
    build(ada, tmp_path / "hello")
    hostname = web_start(ada)
    ada.ok("stop", "-t", "1", "web")

    result = docker_labs.web_running(LearnerContext(ada, {"~/answers/web-hostname": hostname}))

    assert not result.passed
    assert "docker start web" in result.message


def test_the_web_check_fails_without_a_request_and_with_another_hostname(ada, tmp_path):
    build(ada, tmp_path / "hello")
    ada.ok("run", "-d", "--name", "web", "hello:1", "python3", "-m", "http.server", "8000")

    result = docker_labs.web_running(LearnerContext(ada, {"~/answers/web-hostname": "0123456789ab"}))

    assert not result.passed
    assert "shows no request yet" in result.message and "not the host name of web" in result.message
    assert result.fraction == 0.25


def test_the_web_check_fails_for_a_web_from_another_image(ada, tmp_path):
    build(ada, tmp_path / "hello")
    ada.ok("run", "-d", "--name", "web", "sandcloud/python:3.11", "python3", "-m", "http.server", "8000")

    result = docker_labs.web_running(LearnerContext(ada))

    assert not result.passed
    assert "not hello:1" in result.message
