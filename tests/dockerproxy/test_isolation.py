"""One learner cannot see, use or change another learner's containers, images or volumes through their docker CLI.

Each attack is made with the name and with the full id (which a learner could learn from a screenshot), and the other
learner's objects are checked unchanged afterwards."""
from __future__ import annotations

import json

import pytest

IMAGE = "sandcloud/python:3.11"


@pytest.fixture
def adas_objects(ada_docker, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"sleep\", \"60\"]\n")
    ada_docker.ok("build", "-q", "-t", "hello:1", str(tmp_path))
    ada_docker.ok("volume", "create", "notes")
    ada_docker.ok("run", "-d", "--name", "web", "-v", "notes:/data", "hello:1")
    container = ada_docker.ok("inspect", "--format", "{{.Id}}", "web").strip()
    image = ada_docker.ok("image", "inspect", "--format", "{{.Id}}", "hello:1").strip()
    return {"container": container, "image": image}


def _ada_unchanged(ada_docker, adas_objects):
    state = json.loads(ada_docker.ok("inspect", "web"))[0]["State"]
    assert state["Running"] is True
    assert ada_docker.ok("image", "inspect", "--format", "{{.Id}}", "hello:1").strip() == adas_objects["image"]
    assert ada_docker.ok("volume", "ls", "--format", "{{.Name}}").split() == ["notes"]


def test_lists_show_only_the_learners_own_objects(ada_docker, grace_docker, adas_objects):
    assert grace_docker.ok("ps", "-a", "--format", "{{.Names}}") == ""
    assert "hello" not in grace_docker.ok("images", "-a")
    assert grace_docker.ok("volume", "ls", "-q") == ""
    assert adas_objects["image"][7:19] not in grace_docker.ok("images", "-a", "-q", "--no-trunc")


CONTAINER_COMMANDS = [
    ["inspect", "{c}"], ["logs", "{c}"], ["exec", "{c}", "true"], ["stop", "{c}"], ["kill", "{c}"],
    ["rm", "-f", "{c}"], ["top", "{c}"], ["stats", "--no-stream", "{c}"], ["pause", "{c}"], ["restart", "{c}"],
    ["rename", "{c}", "mine"], ["export", "-o", "{tmp}/export.tar", "{c}"], ["cp", "{c}:/etc/hostname", "{tmp}/x"],
    ["update", "--memory", "64m", "{c}"], ["wait", "{c}"], ["port", "{c}"], ["diff", "{c}"], ["attach", "{c}"],
]


def _no_such(docker, command: list[str], **names) -> str:
    """Runs an attack; `rm -f` and `rmi -f` exit 0 on a missing object, so the answer, not the code, is checked."""
    done = docker.run(*[part.format(**names) for part in command], timeout=30)
    error = done.stderr.decode()
    assert "no such" in error.lower(), (command, done.returncode, error)
    return error


@pytest.mark.parametrize("by", ["name", "id"])
def test_another_learners_container_is_no_such_container(ada_docker, grace_docker, adas_objects, by, tmp_path):
    target = "web" if by == "name" else adas_objects["container"]
    for command in CONTAINER_COMMANDS:
        _no_such(grace_docker, command, c=target, tmp=tmp_path)
    _ada_unchanged(ada_docker, adas_objects)


@pytest.mark.parametrize("by", ["name", "id"])
def test_another_learners_image_is_not_theirs_to_use(ada_docker, grace_docker, adas_objects, by):
    target = "hello:1" if by == "name" else adas_objects["image"]
    for command in (["image", "inspect", "{i}"], ["history", "{i}"], ["rmi", "-f", "{i}"], ["tag", "{i}", "stolen:1"]):
        _no_such(grace_docker, command, i=target)
    grace_docker.refused("run", "--rm", target, "true")
    assert "stolen" not in grace_docker.ok("images")
    _ada_unchanged(ada_docker, adas_objects)


def test_a_build_cannot_start_from_another_learners_image(ada_docker, grace_docker, adas_objects, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM hello:1\nCMD [\"true\"]\n")
    error = grace_docker.refused("build", "-t", "mine:1", str(tmp_path))
    assert "FROM hello:1: not one of your images" in error


def test_another_learners_volume_cannot_be_mounted_or_removed(ada_docker, grace_docker, adas_objects):
    assert "not one of your volumes" in grace_docker.refused("run", "--rm", "-v", "notes:/stolen", IMAGE, "true")
    grace_docker.refused("volume", "rm", "notes")
    grace_docker.refused("volume", "inspect", "notes")
    _ada_unchanged(ada_docker, adas_objects)


@pytest.mark.parametrize("option", ["--volumes-from", "--network=container:", "--pid=container:",
                                    "--ipc=container:"])
def test_sharing_another_learners_container_is_refused(ada_docker, grace_docker, adas_objects, option):
    target = adas_objects["container"]
    args = [option, target] if not option.endswith(":") else [option + target]
    error = grace_docker.refused("run", "--rm", *args, IMAGE, "true")
    assert "not one of your containers" in error
    _ada_unchanged(ada_docker, adas_objects)


def test_same_names_for_two_learners_are_two_objects(ada_docker, grace_docker, adas_objects, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"echo\", \"grace's\"]\n")
    grace_docker.ok("build", "-q", "-t", "hello:1", str(tmp_path))
    grace_docker.ok("run", "--name", "web", "hello:1")
    assert grace_docker.ok("logs", "web").strip() == "grace's"
    _ada_unchanged(ada_docker, adas_objects)
