"""The learner's docker CLI through the proxy: the everyday commands work, with the platform's limits."""
from __future__ import annotations

import json


def test_docker_version_shows_the_engine_through_the_proxy(ada_docker):
    out = ada_docker.ok("version", "--format", "{{json .Server}}")
    assert json.loads(out)["ApiVersion"] == "1.41"


def test_run_rm_prints_the_containers_output(ada_docker):
    out = ada_docker.ok("run", "--rm", "sandcloud/python:3.11", "python3", "-c", "print(6*7)")
    assert out.strip() == "42"


def test_ps_lists_the_learners_container_by_its_own_name(ada_docker):
    ada_docker.ok("run", "-d", "--name", "web", "sandcloud/python:3.11", "sleep", "60")
    out = ada_docker.ok("ps", "--format", "{{.Names}} {{.Image}}")
    assert out.split() == ["web", "sandcloud/python:3.11"]


def test_logs_exec_stop_and_rm_act_on_the_learners_container(ada_docker):
    ada_docker.ok("run", "-d", "--name", "talker", "sandcloud/python:3.11", "sh", "-c",
                  "echo hello from talker; sleep 60")
    assert "hello from talker" in ada_docker.ok("logs", "talker")
    assert ada_docker.ok("exec", "talker", "id", "-u").strip().isdigit()
    assert ada_docker.ok("exec", "-i", "talker", "cat", input=b"piped in\n") == "piped in\n"
    ada_docker.ok("stop", "-t", "0", "talker")
    ada_docker.ok("rm", "talker")
    assert "talker" not in ada_docker.ok("ps", "-a", "--format", "{{.Names}}")


def test_build_tag_history_and_rmi_of_the_learners_image(ada_docker, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCOPY app.py /app/app.py\n"
                                         "CMD [\"python3\", \"/app/app.py\"]\n")
    (tmp_path / "app.py").write_text("print('hello from the image')\n")
    build = ada_docker.ok("build", "-t", "hello:1", str(tmp_path))
    assert "Successfully tagged hello:1" in build
    assert ada_docker.ok("run", "--rm", "hello:1").strip() == "hello from the image"
    assert "hello:1" in ada_docker.ok("history", "hello:1") or ada_docker.ok("history", "hello:1")
    ada_docker.ok("tag", "hello:1", "hello:2")
    tags = ada_docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert {"hello:1", "hello:2", "sandcloud/python:3.11"} <= set(tags)
    assert not [t for t in tags if t.startswith("lrn-")]
    ada_docker.ok("rmi", "hello:2")
    assert "hello:2" not in ada_docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()


def test_a_volume_keeps_data_between_containers(ada_docker):
    ada_docker.ok("volume", "create", "notes")
    ada_docker.ok("run", "--rm", "-v", "notes:/data", "sandcloud/python:3.11", "sh", "-c", "echo kept > /data/f")
    assert ada_docker.ok("run", "--rm", "-v", "notes:/data", "sandcloud/python:3.11", "cat", "/data/f") == "kept\n"
    assert ada_docker.ok("volume", "ls", "--format", "{{.Name}}").split() == ["notes"]


def test_a_volume_is_full_at_its_cap_and_the_host_is_not(ada_docker, settings):
    ada_docker.ok("volume", "create", "filler")
    done = ada_docker.run("run", "--rm", "-v", "filler:/data", "sandcloud/python:3.11", "sh", "-c",
                          "dd if=/dev/zero of=/data/big bs=1M count=400 2>&1; ls -s --block-size=M /data/big")
    assert b"No space left on device" in done.stdout
    written = int(done.stdout.split()[-2].decode().rstrip("M"))
    assert written <= 256


def test_the_volume_count_is_capped_with_a_clear_message(ada_docker):
    for number in range(3):
        ada_docker.ok("volume", "create", f"v{number}")
    assert "the most Sandcloud keeps for you" in ada_docker.refused("volume", "create", "v3")
    ada_docker.ok("volume", "rm", "v0")
    ada_docker.ok("volume", "create", "v3")
    assert "device" not in ada_docker.ok("volume", "inspect", "v3")


def test_images_filtered_by_name_find_the_learners_image(ada_docker, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"true\"]\n")
    ada_docker.ok("build", "-q", "-t", "hello:1", str(tmp_path))
    assert ada_docker.ok("images", "hello", "--format", "{{.Repository}}:{{.Tag}}").split() == ["hello:1"]
    assert ada_docker.ok("images", "sandcloud/python", "--format", "{{.Repository}}").split() == ["sandcloud/python"]
