"""`manage.py bench registry`: push and pull throughput of the python image through ECR's token-authenticated front,
against an unauthenticated docker-registry the benchmark starts beside it, both driven by the host's Docker Engine;
and the front's raw blob throughput over HTTP (no engine), to show what the proxy itself costs."""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import docker
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings

from sandbox.awsapi import identity
from sandbox.benchmarks import BenchError

from . import collection, services, tokens
from .server import registry_command, registry_config_write

TARGET_RATIO = 0.8  # the front's throughput over the bare registry's
BLOB_MB = 256


def _fresh_image(client: docker.DockerClient, source: str, reference: str) -> str:
    """The source image's files as a new one-layer image of its own (a container's export, which differs in
    /etc/hostname), so neither registry nor the engine already holds its layer; answers its id."""
    container = client.containers.create(source, command=["true"])
    try:
        archive = b"".join(container.export(chunk_size=1024 * 1024))
    finally:
        container.remove(force=True)
    repository, _, tag = reference.rpartition(":")
    client.api.import_image_from_data(archive, repository=repository, tag=tag)
    return client.images.get(reference).id


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _push(client, reference: str, auth: dict | None) -> None:
    repository, _, tag = reference.rpartition(":")
    for message in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in message:
            raise BenchError(f"pushing {reference}: {message['error']}")


def _pull(client, reference: str, auth: dict | None) -> None:
    repository, _, tag = reference.rpartition(":")
    for message in client.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in message:
            raise BenchError(f"pulling {reference}: {message['error']}")


def _compressed_bytes(host: str, name: str, tag: str, headers: dict) -> int:
    response = requests.get(f"http://{host}/v2/{name}/manifests/{tag}", timeout=30, headers={
        **headers, "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    manifest = response.json()
    return sum(part["size"] for part in [manifest["config"], *manifest["layers"]])


def _blob_round_trip(host: str, name: str, headers: dict, blob: bytes) -> tuple[float, float]:
    """Seconds to upload (monolithic POST + PUT, streamed) and download one blob."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    chunks = (blob[i:i + 1024 * 1024] for i in range(0, len(blob), 1024 * 1024))
    started = time.perf_counter()
    location = requests.post(f"http://{host}/v2/{name}/blobs/uploads/", headers=headers, timeout=30)
    if location.status_code != 202:
        raise BenchError(f"starting an upload to {host}: HTTP {location.status_code} {location.text[:200]}")
    url = location.headers["Location"]
    url = url if url.startswith("http") else f"http://{host}{url}"
    done = requests.put(url, params={"digest": digest}, data=chunks, timeout=300,
                        headers={**headers, "Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise BenchError(f"finishing an upload to {host}: HTTP {done.status_code} {done.text[:200]}")
    upload = time.perf_counter() - started
    started = time.perf_counter()
    with requests.get(f"http://{host}/v2/{name}/blobs/{digest}", headers=headers, stream=True, timeout=300) as got:
        received = sum(len(chunk) for chunk in got.iter_content(1024 * 1024))
    if received != len(blob):
        raise BenchError(f"downloaded {received} of {len(blob)} bytes from {host}")
    return upload, time.perf_counter() - started


def _median_rate(megabytes: list[float], seconds: list[float]) -> float:
    return round(statistics.median(mb / s for mb, s in zip(megabytes, seconds)), 1)


def bench_registry(*, runs: int = 3, progress: Callable[[str], None] = lambda line: None) -> dict:
    from config.processes import free_port, running_registry, running_stack

    client = docker.DockerClient(base_url=settings.SANDCLOUD["DOCKER_URL"], timeout=600, version="auto")
    source = settings.SANDCLOUD["PYTHON_IMAGE"]
    try:
        client.images.get(source)
    except docker.errors.ImageNotFound:
        raise BenchError(f"{source} is missing: run `manage.py sandbox images` first") from None
    engine_version = client.version().get("Version", "?")
    workdir = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    direct_port = free_port()
    direct, made = None, []
    env = {"SANDCLOUD_REGISTRY_DIR": str(workdir / "front")}
    samples: dict[str, list[float]] = {key: [] for key in ("front_push", "direct_push", "front_pull", "direct_pull",
                                                           "mb", "blob_up_front", "blob_up_direct",
                                                           "blob_down_front", "blob_down_direct")}
    try:
        with override_settings(SANDCLOUD_REGISTRY={**settings.SANDCLOUD_REGISTRY, "DIR": env["SANDCLOUD_REGISTRY_DIR"]}):
            config = registry_config_write(port=direct_port, authenticated=False, storage=workdir / "direct",
                                           name="bench-direct")
            direct = subprocess.Popen(registry_command(config_path=config), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
            user, _ = get_user_model().objects.get_or_create(username="bench-registry")
            account = identity.aws_account_for(user=user)
            name = f"bench-{secrets.token_hex(3)}"
            repository = services.repository_create(account=account, name=name)
            password = tokens.authorization_token_issue(account_id=account.account_id).password
            auth = {"username": "AWS", "password": password}
            with running_stack(env=env, worker=False) as base_url, running_registry(
                    token_url=base_url + "/registry/token", env=env, log_dir=workdir) as front:
                front_name, direct_name = repository.registry_name, f"bench/{name}"
                for run in range(runs):
                    progress(f"run {run + 1}/{runs}: a fresh copy of {source}")
                    image = _fresh_image(client, source, f"sandcloud-bench/python:{name}-r{run}")
                    made.append(image)
                    references = {"front": f"{front.host}/{front_name}:r{run}",
                                  "direct": f"127.0.0.1:{direct_port}/{direct_name}:r{run}"}
                    for reference in references.values():
                        repo, _, tag = reference.rpartition(":")
                        client.api.tag(image, repo, tag)
                    order = ("front", "direct") if run % 2 == 0 else ("direct", "front")
                    for kind in order:
                        progress(f"  push to {kind}")
                        samples[f"{kind}_push"].append(_timed(lambda: _push(
                            client, references[kind], auth if kind == "front" else None)))
                    client.images.remove(image, force=True)
                    for kind in order:
                        progress(f"  pull from {kind}")
                        samples[f"{kind}_pull"].append(_timed(lambda: _pull(
                            client, references[kind], auth if kind == "front" else None)))
                        client.images.remove(image, force=True)
                    token = tokens.platform_token(name=front_name, actions=("pull",))
                    samples["mb"].append(_compressed_bytes(front.host, front_name, f"r{run}",
                                                           {"Authorization": f"Bearer {token}"}) / 1e6)
                blob = os.urandom(BLOB_MB * 1024 * 1024)
                for run in range(runs):
                    progress(f"raw blob {run + 1}/{runs}: {BLOB_MB} MB up and down")
                    token = tokens.bearer_token_issue(subject=account.account_id, access=[
                        tokens.Access("repository", front_name, ("pull", "push"))])
                    blob = blob[:-8] + os.urandom(8)  # a new digest each time
                    up, down = _blob_round_trip(front.host, front_name, {"Authorization": f"Bearer {token}"}, blob)
                    samples["blob_up_front"].append(up)
                    samples["blob_down_front"].append(down)
                    up, down = _blob_round_trip(f"127.0.0.1:{direct_port}", direct_name, {}, blob)
                    samples["blob_up_direct"].append(up)
                    samples["blob_down_direct"].append(down)
                progress("garbage collection of everything the front holds")
                with override_settings(SANDCLOUD_REGISTRY={**settings.SANDCLOUD_REGISTRY, "PORT": front.port}):
                    services.repository_delete(account=account, name=name, force=True)
                    collected = collection.gc_run()
                if collected.status != "DONE":
                    raise BenchError(f"the garbage collection ended {collected.status}: {collected.detail}")
    finally:
        for image in made:
            try:
                client.images.remove(image, force=True)
            except docker.errors.APIError:
                pass
        if direct is not None and direct.poll() is None:
            os.killpg(direct.pid, signal.SIGTERM)
            direct.wait(timeout=15)
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    mb, blob_mb = samples["mb"], [BLOB_MB * 1.048576] * runs
    result = {
        "image": source, "image_compressed_mb": round(statistics.median(mb), 1), "runs": runs,
        "push_mb_s": {"front": _median_rate(mb, samples["front_push"]),
                      "direct": _median_rate(mb, samples["direct_push"])},
        "pull_mb_s": {"front": _median_rate(mb, samples["front_pull"]),
                      "direct": _median_rate(mb, samples["direct_pull"])},
        "blob_upload_mb_s": {"front": _median_rate(blob_mb, samples["blob_up_front"]),
                             "direct": _median_rate(blob_mb, samples["blob_up_direct"])},
        "blob_download_mb_s": {"front": _median_rate(blob_mb, samples["blob_down_front"]),
                               "direct": _median_rate(blob_mb, samples["blob_down_direct"])},
    }
    result["garbage_collection"] = {"seconds": collected.seconds, "writes_held_s": collected.held_seconds,
                                    "reclaimed_mb": round((collected.bytes_before - collected.bytes_after) / 1e6, 1)}
    result["machine"] = {"cores": os.cpu_count(), "engine": engine_version}
    targets = {}
    for name in ("push_mb_s", "pull_mb_s"):
        ratio = round(result[name]["front"] / result[name]["direct"], 2)
        result[name]["ratio"] = ratio
        targets[f"{name}_ratio"] = {"stat": "x", "measured": ratio, "target": TARGET_RATIO,
                                    "met": ratio >= TARGET_RATIO}
    for name in ("blob_upload_mb_s", "blob_download_mb_s"):
        result[name]["ratio"] = round(result[name]["front"] / result[name]["direct"], 2)
    result["targets"] = targets
    return result
