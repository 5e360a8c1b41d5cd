"""Escalation and leakage: the root filesystem, privileges and the environment give a learner nothing of the host's."""
from __future__ import annotations

import secrets

import pytest
from django.conf import settings

from sandbox import services
from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from tests.conftest import run_in

from .observe import assert_host_and_bystander_answer, inspect

pytestmark = pytest.mark.docker


def test_the_root_filesystem_cannot_be_written_even_where_unix_permissions_allow(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)

    # /var/tmp is world-writable in Debian: only a read-only root filesystem stops this first write.
    _, output = run_in(sandbox, "for path in /var/tmp/x /usr/local/bin/x /etc/x /x; do touch $path; done", timeout=10)
    # A separate exec: stderr and stdout of one exec can arrive interleaved in either order.
    _, mounts = run_in(sandbox, "grep ' / ' /proc/self/mounts", timeout=10)

    assert output.count("Read-only file system") == 4, output
    root_mount_options = mounts.strip().splitlines()[-1].split()[3].split(",")
    assert "ro" in root_mount_options
    assert_host_and_bystander_answer(bystander)


def test_there_is_no_setuid_program_no_capability_and_no_way_to_become_root(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)

    _, setuid_files = run_in(sandbox, "find / -xdev -type f -perm /6000 2>/dev/null", timeout=20)
    _, files_searched = run_in(sandbox, "find / -xdev -type f 2>/dev/null | wc -l", timeout=20)
    _, status = run_in(sandbox, "grep -E '^(Uid|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
                       timeout=5)
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status.splitlines()}
    attempts = {
        "setuid(0)": "python3 -c 'import os; os.setuid(0)'",
        "a user namespace mapping us to root": "unshare --user --map-root-user true",
        "su": "su -c true root </dev/null",
    }
    outcomes = {name: run_in(sandbox, command, timeout=10)[0] for name, command in attempts.items()}

    assert int(files_searched) > 1000 and setuid_files.strip() == ""  # the search saw the image, and no setuid file
    assert fields["Uid"][0] == str(sandbox.uid) != "0"
    for capabilities in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[capabilities][0], 16) == 0, capabilities
    assert fields["NoNewPrivs"] == ["1"]
    assert fields["Seccomp"] == ["2"]  # docker's default filter: no unshare, mount, keyctl, bpf…
    assert all(code != 0 for code in outcomes.values()), outcomes
    assert run_in(sandbox, "id -u", timeout=5) == (0, f"{sandbox.uid}\n")
    assert_host_and_bystander_answer(bystander)


def test_no_host_secret_or_host_environment_reaches_the_sandbox(start_sandbox, learner, bystander, monkeypatch):
    canaries = {name: f"canary-{secrets.token_hex(8)}" for name in
                ("SANDCLOUD_SECRET_KEY", "DATABASE_URL", "SANDCLOUD_REDIS_URL", "CELERY_BROKER_URL",
                 "SANDCLOUD_ABUSE_CANARY")}
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    sandbox = start_sandbox(learner)

    _, environments = run_in(sandbox, "env; echo ---; tr '\\0' '\\n' </proc/1/environ", timeout=5)
    container_config = "\n".join(inspect(sandbox)["Config"]["Env"])

    assert "HOME=/home/learner" in environments  # we are looking at the right thing
    for seen in (environments, container_config):
        for name, value in canaries.items():
            assert name not in seen and value not in seen
        for secret in (settings.SECRET_KEY, settings.REDIS_URL, str(settings.DATABASES["default"]["NAME"])):
            assert secret not in seen
    assert_host_and_bystander_answer(bystander)


def test_a_sandbox_asking_for_a_capability_is_refused_and_nothing_is_made(start_sandbox, learner, bystander):
    # NET_BIND_SERVICE was on the old allow-list, yet as an ordinary uid under no-new-privileges the learner never held
    # it (only the bounding set did): a declared capability is refused rather than promised and never granted.
    containers = {c.id for c in engine().managed_containers()}

    with pytest.raises(services.SandboxError, match=r"cannot be given capabilities \(NET_BIND_SERVICE\)"):
        services.sandbox_request(owner=learner, capabilities=["NET_BIND_SERVICE"])

    assert not Sandbox.objects.filter(owner=learner).exists()
    assert {c.id for c in engine().managed_containers()} == containers
    assert_host_and_bystander_answer(bystander)
