"""`manage.py bench docker`: the learner's docker CLI through the proxy against the same CLI straight at the engine.

Same run, interleaved (proxy, direct, proxy, direct...) so both meet the same host load: `docker run --rm` of the
python image, `docker ps`, and a small build without cache. The proxy is a real `manage.py dockerproxy` process on
this install's database, serving a bench learner's live sandbox row on a uid of its own.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from config.processes import running_dockerproxy
from sandbox.benchmarks import BenchError
from sandbox.benchmarks.results import percentile, summarize
from sandbox.engine.images import DOCKER_CLI

BENCH_UID = 59_999  # outside the sandbox and pool uid ranges, so no live sandbox can hold it
BUILD_FILES = {
    "Dockerfile": "FROM sandcloud/python:3.11\nRUN echo built > /built.txt\nCOPY app.py /app/app.py\n"
                  "CMD [\"python3\", \"/app/app.py\"]\n",
    "app.py": "print('hello from the benchmark')\n",
}


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed: {done.stderr.decode().strip()}")
    return time.perf_counter() - started


def _overhead_pct(proxy: dict, direct: dict) -> float | None:
    if not proxy.get("p50") or not direct.get("p50"):
        return None
    return round((proxy["p50"] - direct["p50"]) / direct["p50"] * 100, 1)


def bench_docker(*, runs: int = 20, builds: int = 5, registry_runs: int = 3,
                 progress: Callable[[str], None] = lambda line: None) -> dict:
    from sandbox.models import Sandbox
    from sandbox.services import learner_network_ensure

    if not os.path.isfile(DOCKER_CLI):
        raise BenchError(f"{DOCKER_CLI} is missing (Debian's docker.io package)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    user, _ = get_user_model().objects.get_or_create(username="bench-docker")
    network = learner_network_ensure(user_id=user.pk)
    Sandbox.objects.filter(uid=BENCH_UID).delete()
    sandbox = Sandbox.objects.create(owner=user, image=settings.SANDCLOUD["WORKSTATION_IMAGE"], memory_mb=256,
                                     cpus=0.5, pids_limit=256, uid=BENCH_UID, state=Sandbox.State.RUNNING,
                                     expires_at=timezone.now() + timezone.timedelta(hours=1))
    socket_path = workdir / f"uid-{BENCH_UID}" / "docker.sock"
    (workdir / f"uid-{BENCH_UID}").mkdir()
    base_env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "DOCKER_BUILDKIT": "0"}
    direct_env = {**base_env, "DOCKER_HOST": settings.SANDCLOUD["DOCKER_URL"]}
    proxy_env = {**base_env, "DOCKER_HOST": f"unix://{socket_path}"}
    context = workdir / "context"
    context.mkdir()
    for name, text in BUILD_FILES.items():
        (context / name).write_text(text)
    samples: dict[str, list[float]] = {k: [] for k in ("run_proxy", "run_direct", "run_direct_hardened",
                                                       "ps_proxy", "ps_direct", "ps_during_build",
                                                       "build_proxy", "build_direct")}
    try:
        with running_dockerproxy(directory=workdir):
            _measure(samples, runs=runs, builds=builds, network=network, context=context, direct_env=direct_env,
                     proxy_env=proxy_env, progress=progress)
    except RuntimeError as error:
        raise BenchError(str(error)) from error
    finally:
        sandbox.delete()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {key: summarize(values) for key, values in samples.items()}
    for key in ("build_proxy", "build_direct"):
        result[key] = {k: round(percentile(samples[key], float(k[1:])), 2) for k in ("p50", "p95")}
    result["proxy_overhead_pct"] = _overhead_pct(result["run_proxy"], result["run_direct"])
    result["ps_overhead_pct"] = _overhead_pct(result["ps_proxy"], result["ps_direct"])
    result["proxy_only_overhead_pct"] = _overhead_pct(result["run_proxy"], result["run_direct_hardened"])
    result["build_s"] = {"proxy": result["build_proxy"]["p50"], "direct": result["build_direct"]["p50"]}
    result["targets"] = {"proxy_overhead_pct": {"measured": result["proxy_overhead_pct"], "target": 10.0,
                                                "met": (result["proxy_overhead_pct"] or 0) <= 10.0}}
    if registry_runs:
        from sandbox.registry.benchmarks import bench_registry
        progress("push and pull through the token-authenticated registry and an unauthenticated one")
        result["registry"] = bench_registry(runs=registry_runs, progress=progress)
    return result


def _measure(samples: dict[str, list[float]], *, runs: int, builds: int, network: str, context: Path,
             direct_env: dict[str, str], proxy_env: dict[str, str], progress: Callable[[str], None]) -> None:
    image = settings.SANDCLOUD["PYTHON_IMAGE"]
    run = [DOCKER_CLI, "run", "--rm", image, "true"]
    # What the proxy makes of that `docker run` (policy.container_create_check), given straight to the engine:
    # separates the proxy's own cost from the cost of the hardening it adds (learner network, tmpfs, limits).
    run_hardened = [DOCKER_CLI, "run", "--rm", "--read-only", "--user", f"{BENCH_UID}:20000", "--cap-drop", "ALL",
                    "--security-opt", "no-new-privileges", "--network", network, "--dns", "127.0.0.1",
                    "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "--tmpfs", "/tmp:size=32m",
                    "--memory", "256m", "--memory-swap", "256m", "--pids-limit", "256", "--cpus", "0.5",
                    "--shm-size", "32m", "--add-host", "aws.sandcloud.internal:host-gateway", image, "true"]
    ps = [DOCKER_CLI, "ps"]
    for label, env in (("proxy", proxy_env), ("direct", direct_env)):  # warm both paths once
        _timed(run, env)
        _timed(ps, env)
    progress(f"docker run --rm and docker ps, {runs} of each through the proxy and directly")
    for _ in range(runs):
        for label, env in (("proxy", proxy_env), ("direct", direct_env)):
            samples[f"run_{label}"].append(_timed(run, env) * 1000)
            samples[f"ps_{label}"].append(_timed(ps, env) * 1000)
        samples["run_direct_hardened"].append(_timed(run_hardened, direct_env) * 1000)
    _measure_contention(samples, runs=runs, context=context, proxy_env=proxy_env, progress=progress)
    progress(f"docker build --no-cache of a small Dockerfile, {builds} times each way")
    for number in range(builds):
        for label, env in (("proxy", proxy_env), ("direct", direct_env)):
            tag = f"bench-docker-{label}:{number}"
            samples[f"build_{label}"].append(_timed([DOCKER_CLI, "build", "--no-cache", "-q", "-t", tag,
                                                     str(context)], env))
            _timed([DOCKER_CLI, "rmi", tag], env)


def _measure_contention(samples: dict[str, list[float]], *, runs: int, context: Path, proxy_env: dict[str, str],
                        progress: Callable[[str], None]) -> None:
    """`docker ps` through the proxy while a CPU-bound build runs for the same learner on the same engine: builds are
    capped at the learner's CPU share, so everyone else's commands keep their pace."""
    heavy = context.parent / "heavy"
    heavy.mkdir()
    (heavy / "Dockerfile").write_text("FROM sandcloud/python:3.11\n"
                                      "RUN python3 -c \"print(sum(i * i for i in range(60_000_000)))\"\n")
    progress("docker ps while a CPU-bound build runs")
    builder = subprocess.Popen([DOCKER_CLI, "build", "--no-cache", "-q", "-t", "bench-docker-heavy:1", str(heavy)],
                               env=proxy_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # into the RUN step
        while builder.poll() is None and len(samples["ps_during_build"]) < runs:
            samples["ps_during_build"].append(_timed([DOCKER_CLI, "ps"], proxy_env) * 1000)
    finally:
        builder.wait(timeout=600)
        subprocess.run([DOCKER_CLI, "rmi", "bench-docker-heavy:1"], env=proxy_env, capture_output=True, timeout=60)
