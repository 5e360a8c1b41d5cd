"""Execution environments: reused warm, frozen when idle and thawed by the next invocation, reconciled with Docker,
left alone by the sandbox reaper; and AWS's own runtime client in an unmodified image speaks our Runtime API."""
from __future__ import annotations

import base64
import io
import json
import tarfile
import time

import pytest
from django.conf import settings

from sandbox import services as sandboxes
from sandbox.engine.docker import engine
from sandbox.engine.environments import EnvironmentClient
from sandbox.functions import environments, reaper
from sandbox.functions.models import ExecutionEnvironment

from .conftest import create

pytestmark = pytest.mark.docker


def test_an_idle_environment_is_frozen_and_the_next_invocation_thaws_and_reuses_it(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    row = ExecutionEnvironment.objects.get()

    counts = reaper.environments_tend(now=time.time() + settings.SANDCLOUD_FUNCTIONS["FREEZE_AFTER_SECONDS"] + 1)

    assert counts["frozen"] == 1 and engine().state(row.container_id).status == "paused"
    answer = client.invoke(FunctionName="hello", Payload=b"{}", LogType="Tail")
    assert "Init Duration" not in base64.b64decode(answer["LogResult"]).decode()
    assert engine().state(row.container_id).status == "running"
    assert ExecutionEnvironment.objects.get().pk == row.pk


def test_an_environment_idle_past_the_limit_is_removed(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    container_id = ExecutionEnvironment.objects.get().container_id

    counts = reaper.environments_tend(now=time.time() + settings.SANDCLOUD_FUNCTIONS["IDLE_REMOVE_SECONDS"] + 1)

    assert counts["removed"] == 1 and ExecutionEnvironment.objects.count() == 0
    assert engine().state(container_id) is None


def test_the_sandbox_reaper_leaves_function_environments_to_their_own_reaper(aws, learner, settings):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    settings.SANDCLOUD = {**settings.SANDCLOUD, "ORPHAN_GRACE_SECONDS": 0}

    sandboxes.sandbox_reap()

    assert client.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200
    assert ExecutionEnvironment.objects.count() == 1


def test_reconcile_drops_rows_whose_container_vanished(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    engine().remove(ExecutionEnvironment.objects.get().container_id)

    counts = reaper.environments_reconcile()

    assert counts["lost"] == 1 and ExecutionEnvironment.objects.count() == 0
    assert client.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200  # a cold start takes over


def test_an_unmodified_awslambdaric_image_runs_against_the_runtime_api(runtime_image, docker_engine, tmp_path):
    """An image built as AWS documents for a custom Python image (ENTRYPOINT python -m awslambdaric, CMD the
    handler) runs unchanged: only the platform's init is put in front of its entry point."""
    from sandbox.engine.runtime_images import INIT_SOURCE, _packages_dir

    client = docker_engine.client
    context = io.BytesIO()
    dockerfile = (f"FROM {settings.SANDCLOUD['PYTHON_IMAGE']}\n"
                  "COPY runtime/ /function/\nCOPY app.py /function/app.py\nWORKDIR /function\n"
                  "ENV PYTHONPATH=/function\n"
                  'ENTRYPOINT ["python3", "-m", "awslambdaric"]\nCMD ["app.handler"]\n').encode()
    app = b"def handler(event, context):\n    return {'echo': event, 'fn': context.function_name}\n"
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("app.py", app)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(str(_packages_dir(io.StringIO()) / "awslambdaric"), arcname="runtime/awslambdaric")
        packages = _packages_dir(io.StringIO())
        for extra in packages.iterdir():
            if extra.name.startswith(("simplejson", "snapshot_restore_py", "runtime_client")):
                tar.add(str(extra), arcname=f"runtime/{extra.name}")
    context.seek(0)
    tag = f"sandcloud-test/ric-image:{settings.SANDCLOUD['INSTANCE']}"
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, network_mode="none",
                                   labels={"sandcloud.test": settings.SANDCLOUD["INSTANCE"]})
    config = image.attrs["Config"]
    original = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    container = client.containers.run(
        tag, detach=True, entrypoint=["python3", "-u", "/opt/sandcloud/init.py"], command=[],
        volumes={str(INIT_SOURCE): {"bind": "/opt/sandcloud/init.py", "mode": "ro"}}, user="39998:39998",
        environment={"_SANDCLOUD_RUNTIME_COMMAND": json.dumps(original), "_SANDCLOUD_CONTROL_TOKEN": "t0k",
                     "AWS_LAMBDA_FUNCTION_NAME": "ric", "LAMBDA_TASK_ROOT": "/function"},
        labels={"sandcloud.test": settings.SANDCLOUD["INSTANCE"]}, mem_limit="256m")
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        init = EnvironmentClient(address=address, token="t0k")
        init.wait_listening()
        assert init.ready(timeout=15).state == "ready"
        result = init.invoke(request_id="req-1", deadline_ms=int(time.time() * 1000) + 5000,
                             function_arn="arn:aws:lambda:us-east-1:123456789012:function:ric",
                             payload=b'{"a": 1}')
        assert result.status == "success"
        assert json.loads(result.payload) == {"echo": {"a": 1}, "fn": "ric"}
    finally:
        container.remove(force=True)
        client.images.remove(tag, force=True)


def test_deleting_the_learners_account_removes_their_functions_containers_and_code(aws, learner):
    from pathlib import Path

    from accounts.services import account_delete
    from sandbox.functions import code as code_store
    from sandbox.functions.models import Function, FunctionVersion

    learner.set_password("pw-ada")
    learner.save()
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    container_id = ExecutionEnvironment.objects.get().container_id
    code_dir = Path(code_store.code_dir(FunctionVersion.objects.get().code_key))
    assert code_dir.is_dir()

    account_delete(user=learner, password="pw-ada")

    assert not Function.objects.exists() and not ExecutionEnvironment.objects.exists()
    assert engine().state(container_id) is None and not code_dir.exists()


def test_a_function_asking_for_strong_isolation_runs_under_gvisor(aws, learner):
    code = "import os\ndef handler(e, c):\n    return os.uname().release\n"
    client = aws(learner)
    create(client, learner, files={"app.py": code}, Tags={"sandcloud:isolation": "strong"}, Timeout=30)

    answer = client.invoke(FunctionName="hello", Payload=b"{}")

    assert json.loads(answer["Payload"].read()) == "4.4.0"  # gVisor's own kernel, not the host's
    assert engine().api.inspect_container(ExecutionEnvironment.objects.get().container_id)["HostConfig"]["Runtime"] \
        == "runsc-net"


def test_cpu_grows_with_memory_so_a_cpu_bound_function_runs_faster_with_more(aws, learner):
    import re

    code = "def handler(e, c):\n    n = 0\n    for i in range(1500000):\n        n += i * i\n    return n\n"
    client = aws(learner)
    create(client, learner, files={"app.py": code}, Timeout=30, MemorySize=128)

    def duration() -> float:
        client.invoke(FunctionName="hello", Payload=b"{}")  # the first one carries the init's full CPU
        log = base64.b64decode(client.invoke(FunctionName="hello", Payload=b"{}", LogType="Tail")["LogResult"])
        return float(re.search(rb"\tDuration: (\d+\.\d+) ms", log).group(1))

    small = duration()
    client.update_function_configuration(FunctionName="hello", MemorySize=1769)
    large = duration()

    assert small > 3 * large, (small, large)


def test_an_idle_provisioned_environment_is_renewed_before_its_credentials_expire(aws, learner):
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.awsapi.models import AccessKey
    from sandbox.functions import services

    client = aws(learner)
    create(client, learner)
    client.publish_version(FunctionName="hello")
    client.put_provisioned_concurrency_config(FunctionName="hello", Qualifier="1", ProvisionedConcurrentExecutions=1)
    old = ExecutionEnvironment.objects.get(provisioned=True)
    ExecutionEnvironment.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=11, minutes=1))

    counts = reaper.environments_reconcile()
    services.provisioned_refill()

    fresh = ExecutionEnvironment.objects.get(provisioned=True)
    assert counts["renewed"] == 1 and fresh.pk != old.pk
    assert engine().state(old.container_id) is None
    assert not AccessKey.objects.filter(access_key_id=old.session_key_id).exists()
    answer = client.invoke(FunctionName="hello", Qualifier="1", Payload=b"{}", LogType="Tail")
    assert "Init Duration" not in base64.b64decode(answer["LogResult"]).decode()


def test_a_process_keeps_at_most_a_bounded_number_of_environment_connections(monkeypatch):
    """Environments removed by another process leave their connections here; the oldest are closed past the bound."""
    monkeypatch.setattr(environments, "MAX_CLIENTS", 3)
    monkeypatch.setattr(environments, "_clients", environments.OrderedDict())
    made = [environments.Environment(id=n, version_id=1, revision="r", container_id=f"c{n}", address=f"10.0.0.{n}",
                                     token="t", host="local", cgroup="", log_stream="s", frozen=False,
                                     provisioned=False) for n in range(5)]

    clients = [environments.client_for(environment) for environment in made]

    assert list(environments._clients) == [2, 3, 4]
    assert environments.client_for(made[4]) is clients[4]
