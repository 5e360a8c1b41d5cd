"""Each option that would reach past the learner's own container is refused by name, and nothing is created."""
from __future__ import annotations

import pytest

from tests.dockerproxy.conftest import _remove_objects_of, learner_docker, running_proxy

IMAGE = "sandcloud/python:3.11"

REFUSED = [
    (["--privileged"], "--privileged"),
    (["--network", "host"], "--network host"),
    (["--pid", "host"], "--pid host"),
    (["--ipc", "host"], "--ipc host"),
    (["--uts", "host"], "--uts host"),
    (["--userns", "host"], "--userns host"),
    (["-v", "/etc:/host-etc"], "/etc"),
    (["--mount", "type=bind,source=/,target=/host"], "type=bind"),
    (["--device", "/dev/kmsg"], "--device"),
    (["--cap-add", "SYS_ADMIN"], "--cap-add"),
    (["--security-opt", "seccomp=unconfined"], "seccomp=unconfined"),
    (["--security-opt", "apparmor=unconfined"], "apparmor=unconfined"),
    (["-p", "8080:80"], "--publish"),
    (["-P"], "--publish-all"),
    (["--sysctl", "net.ipv4.ip_forward=1"], "--sysctl"),
    (["--runtime", "io.containerd.runc.v2"], "--runtime"),
    (["--cgroup-parent", "/"], "--cgroup-parent"),
    (["--oom-kill-disable"], "oom"),
    (["--volumes-from", "somebody-elses"], "--volumes-from"),
    (["--memory", "4g"], "--memory"),
]


@pytest.mark.parametrize("options,named", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_a_dangerous_option_is_refused_by_name_and_creates_nothing(ada_docker, options, named):
    error = ada_docker.refused("run", "--rm", *options, IMAGE, "true")
    assert named in error, error
    assert "Traceback" not in error
    assert ada_docker.ok("ps", "-aq") == ""


def test_the_container_quota_is_told_and_kept(ada_docker, settings):
    for number in range(5):
        ada_docker.ok("create", "--name", f"c{number}", "--memory", "64m", IMAGE, "true")
    error = ada_docker.refused("create", "--name", "one-too-many", "--memory", "64m", IMAGE, "true")
    assert "as many containers as Sandcloud allows" in error
    assert len(ada_docker.ok("ps", "-aq").split()) == 5


def test_the_memory_quota_is_told_and_kept(ada_docker):
    ada_docker.ok("create", "--name", "big", "--memory", "256m", IMAGE, "true")
    ada_docker.ok("create", "--name", "big2", "--memory", "200m", IMAGE, "true")
    error = ada_docker.refused("create", "--name", "too-big", "--memory", "100m", IMAGE, "true")
    assert "memory" in error and "MB" in error
    assert sorted(ada_docker.ok("ps", "-a", "--format", "{{.Names}}").split()) == ["big", "big2"]


def test_a_container_runs_with_the_platforms_hardening(ada_docker):
    ada_docker.ok("run", "-d", "--name", "inspected", IMAGE, "sleep", "30")
    user, readonly, caps, memory = ada_docker.ok(
        "inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} "
                               "{{.HostConfig.Memory}}", "inspected").split(maxsplit=3)
    assert not user.startswith("0") and user != "root"
    assert readonly == "true" and "ALL" in caps and int(memory) > 0


def test_pulling_from_docker_hub_is_refused_with_advice(ada_docker):
    error = ada_docker.refused("pull", "alpine")
    assert "pull access denied for alpine" in error and "private registry" in error


def test_a_shared_base_image_cannot_be_removed_or_tagged_over(ada_docker):
    assert "read-only" in ada_docker.refused("rmi", IMAGE)
    assert "read-only" in ada_docker.refused("tag", IMAGE, IMAGE)
    assert IMAGE in ada_docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}")


def test_pulling_a_shared_image_answers_up_to_date(ada_docker):
    assert "Image is up to date" in ada_docker.ok("pull", IMAGE)


def test_the_image_storage_quota_is_told_before_a_build(tmp_path_factory, learner, transactional_db, tmp_path):
    """With a 100 MB cap, the first build runs (nothing is stored yet) and takes about 111 MB; the next is refused."""
    directory = tmp_path_factory.mktemp("small-quota")
    with running_proxy(directory, env={"SANDCLOUD_DOCKER_IMAGE_STORAGE_MB": "100"}):
        ada = learner_docker(directory, learner)
        (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"true\"]\n")
        try:
            ada.ok("build", "-q", "-t", "first:1", str(tmp_path))
            error = ada.refused("build", "-q", "-t", "second:1", str(tmp_path))
            assert "the most Sandcloud keeps for you is 100 MB" in error, error
            assert "docker rmi" in error
        finally:
            _remove_objects_of(learner)
