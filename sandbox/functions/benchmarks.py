"""`manage.py bench functions`: invoke latency (warm, frozen, cold), the platform's own overhead and throughput, measured
end to end by a SigV4 client over HTTP against a real daphne, and a new-container-per-invocation baseline."""
from __future__ import annotations

import base64
import os
import json
import re
import secrets
import threading
import time
from typing import Callable

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings
from django.contrib.auth import get_user_model

from sandbox.awsapi import identity
from sandbox.benchmarks import BenchError
from sandbox.benchmarks.results import summarize
from sandbox.engine.docker import engine
from sandbox.engine.environments import EnvironmentClient
from sandbox.policy import ContainerSpec, Limits

from . import code as code_store
from . import reaper, services
from .models import Function

TARGETS = {"warm_invoke_ms": ("p50", 10.0), "platform_overhead_ms": ("p50", 3.0), "frozen_invoke_ms": ("p50", 40.0),
           "cold_invoke_ms": ("p50", 500.0)}
NOOP = "def handler(event, context):\n    return None\n"
_DURATION = re.compile(r"\tDuration: (\d+\.\d+) ms")


class SignedClient:
    """Invoke as the aws CLI sends it: botocore's SigV4 signature, one kept-alive HTTP connection per client."""

    def __init__(self, base_url: str, key_id: str, secret: str, region: str = "us-east-1"):
        self.url = base_url + "/aws/2015-03-31/functions/{}/invocations"
        self.credentials = Credentials(key_id, secret)
        self.region = region
        self.http = requests.Session()

    def invoke(self, name: str, payload: bytes = b"{}", *, tail: bool = True) -> tuple[float, requests.Response]:
        headers = {"Content-Type": "application/octet-stream"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        request = AWSRequest(method="POST", url=self.url.format(name), data=payload, headers=headers)
        SigV4Auth(self.credentials, "lambda", self.region).add_auth(request)
        prepared = request.prepare()
        started = time.perf_counter()
        response = self.http.post(prepared.url, data=payload, headers=dict(prepared.headers), timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or response.headers.get("X-Amz-Function-Error"):
            raise BenchError(f"invoke answered {response.status_code}: {response.text[:300]}")
        return elapsed, response


def _handler_duration(response: requests.Response) -> float | None:
    log = base64.b64decode(response.headers.get("X-Amz-Log-Result", "")).decode("utf-8", "replace")
    found = _DURATION.search(log)
    return float(found.group(1)) if found else None


def _function(user, name: str) -> Function:
    account = identity.aws_account_for(user=user)
    existing = Function.objects.filter(account=account, name=name).first()
    if existing is not None:
        services.function_delete(account=account, function_name=name)
    services.function_create(account=account, name=name, runtime="python3.11",
                             role=f"arn:aws:iam::{account.account_id}:role/bench", handler="app.handler",
                             code={"ZipFile": code_store.code_zip({"app.py": NOOP})}, memory_size=128, timeout=3)
    services._activate(Function.objects.get(account=account, name=name).versions.get().pk)
    return Function.objects.get(account=account, name=name)


def _retire_all(function: Function) -> None:
    for version in function.versions.all():
        services.environments_retire(version_id=version.pk)


def fresh_container_baseline(function: Function, runs: int) -> list[float]:
    """A new container for each invocation, as moto and SAM do by default: create, start, init, invoke, remove."""
    version = function.versions.get()
    docker = engine()
    samples = []
    for index in range(runs):
        token = secrets.token_hex(8)
        spec = ContainerSpec(name=f"sandcloud-{settings.SANDCLOUD['INSTANCE']}-fnbase-{index}-{token[:6]}",
                             image=settings.SANDCLOUD_FUNCTIONS["RUNTIME_IMAGE"], uid=39999, gid=39999,
                             labels={"sandcloud.instance": settings.SANDCLOUD["INSTANCE"], "sandcloud.kind": "bench"},
                             limits=Limits(memory_mb=128, cpus=1.0, pids=1024, home_mb=1, tmp_mb=64),
                             network="bridge", binds=((str(code_store.code_dir(version.code_key)), "/var/task"),),
                             environment={"_SANDCLOUD_CONTROL_TOKEN": token, "_SANDCLOUD_RUNTIME_COMMAND":
                                          json.dumps(["python3", "-m", "awslambdaric", version.handler])})
        started = time.perf_counter()
        container_id = docker.run(spec)
        try:
            client = EnvironmentClient(address=docker.address(container_id, "bridge"), token=token)
            client.wait_listening()
            client.ready(timeout=15)
            client.invoke(request_id=f"baseline-{index}", deadline_ms=int(time.time() * 1000) + 3000,
                          function_arn="arn:aws:lambda:us-east-1:000000000000:function:baseline", payload=b"{}")
            client.close()
        finally:
            docker.remove(container_id)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _throughput(base_url: str, key_id: str, secret: str, name: str, *, clients: int, seconds: float) -> dict:
    counts = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        client = SignedClient(base_url, key_id, secret)
        while time.monotonic() < stop:
            try:
                client.invoke(name, tail=False)
                counts[slot] += 1
            except (BenchError, requests.RequestException):
                errors[slot] += 1

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"rps": round(sum(counts) / elapsed, 1), "invocations": sum(counts), "errors": sum(errors),
            "clients": clients, "seconds": round(elapsed, 1)}


def bench_functions(*, runs: int = 50, rps_seconds: float = 20, clients: int = 10,
                    progress: Callable[[str], None] = lambda line: None) -> dict:
    from config.processes import running_stack

    user, _ = get_user_model().objects.get_or_create(username="bench-functions")
    key, secret = identity.access_key_create(user=user) if not identity.access_keys_for(user=user).filter(
        status="Active").exists() else (None, None)
    if key is None:
        key = identity.access_keys_for(user=user).filter(status="Active").first()
        secret = identity.access_key_secret(access_key=key)
    function = _function(user, "bench-noop")
    freeze_after = settings.SANDCLOUD_FUNCTIONS["FREEZE_AFTER_SECONDS"]
    # The bench freezes environments itself, when it means to: no beat runs, and the web process must not either.
    env = {"SANDCLOUD_FUNCTIONS_FREEZE_AFTER_SECONDS": str(freeze_after)}
    try:
        with running_stack(env=env, worker=False) as base_url:
            client = SignedClient(base_url, key.access_key_id, secret)
            progress(f"stack up at {base_url}; warm x{runs}")
            client.invoke("bench-noop")
            warm, handler = [], []
            for _ in range(runs + 2):
                elapsed, response = client.invoke("bench-noop")
                warm.append(elapsed)
                handler.append(_handler_duration(response) or 0.0)
            warm, handler = warm[2:], handler[2:]
            overhead = [w - h for w, h in zip(warm, handler)]
            progress(f"frozen x{runs}")
            frozen = []
            for _ in range(runs):
                client.invoke("bench-noop")
                reaper.environments_tend(now=time.time() + freeze_after + 0.05)
                elapsed, _ = client.invoke("bench-noop")
                frozen.append(elapsed)
            progress(f"cold x{runs}")
            cold = []
            for _ in range(runs):
                _retire_all(function)
                elapsed, _ = client.invoke("bench-noop")
                cold.append(elapsed)
            progress(f"throughput: {clients} clients for {rps_seconds:.0f} s")
            throughput = _throughput(base_url, key.access_key_id, secret, "bench-noop", clients=clients,
                                     seconds=rps_seconds)
        progress(f"fresh-container baseline x{min(runs, 20)}")
        baseline = fresh_container_baseline(function, min(runs, 20))
    finally:
        _retire_all(function)
        services.function_delete(account=function.account, function_name=function.name)
    result = {
        "warm_invoke_ms": summarize(warm), "handler_duration_ms": summarize(handler),
        "platform_overhead_ms": summarize(overhead), "frozen_invoke_ms": summarize(frozen),
        "cold_invoke_ms": summarize(cold), "fresh_container_baseline_ms": summarize(baseline),
        "invoke_rps": throughput,
    }
    warm_p50 = result["warm_invoke_ms"]["p50"]
    result["warm_speedup_vs_fresh"] = round(result["fresh_container_baseline_ms"]["p50"] / warm_p50, 1)
    targets = {}
    for name, (stat, limit) in TARGETS.items():
        measured = result[name][stat]
        targets[name] = {"stat": stat, "measured": measured, "target": limit, "met": measured <= limit}
    targets["invoke_rps"] = {"stat": "value", "measured": throughput["rps"], "target": 400.0,
                             "met": throughput["rps"] >= 400}
    targets["warm_speedup_vs_fresh"] = {"stat": "x", "measured": result["warm_speedup_vs_fresh"], "target": 40.0,
                                        "met": result["warm_speedup_vs_fresh"] >= 40}
    result["targets"] = targets
    result["machine"] = {"cpus": os.cpu_count(), "database": settings.DATABASES["default"]["ENGINE"]
                         .rsplit(".", 1)[-1], "runs": runs}
    return result
