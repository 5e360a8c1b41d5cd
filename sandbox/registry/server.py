"""The registry process: Debian's docker-registry (CNCF distribution 2.8), its config, and the commands that run it
and collect its garbage."""
from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

from django.conf import settings

from . import tokens
from .keys import signing_key_ensure

PROGRAM = "docker-registry"


def storage_dir() -> Path:
    return Path(settings.SANDCLOUD_REGISTRY["DIR"]) / "storage"


def storage_bytes() -> int:
    """What the registry's blobs take on disk (layers and configs; manifests are blobs too)."""
    root = storage_dir() / "docker" / "registry" / "v2" / "blobs"
    return sum(path.stat().st_size for path in root.rglob("data") if path.is_file()) if root.exists() else 0


def registry_config_write(*, port: int, token_url: str | None = None, authenticated: bool = True,
                          storage: Path | None = None, name: str | None = None) -> Path:
    """Writes the registry's config for a listener on 127.0.0.1:`port` (JSON, which its YAML reader takes) and
    returns its path: local-disk storage, deletes allowed (the platform removes images), no blob descriptor cache
    (a garbage collection must not leave the registry believing in deleted blobs), and token authentication trusting
    only the platform's certificate, with `token_url` (default SANDCLOUD_REGISTRY["TOKEN_URL"]) as realm.
    `authenticated=False` is the benchmark's baseline registry, open to anyone on loopback."""
    directory = Path(settings.SANDCLOUD_REGISTRY["DIR"])
    root = storage or storage_dir()
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        # Warnings and errors only: at "info" it logs every request, which would drown `make run`'s output.
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        # A fresh secret each start: it only signs upload state, which a restart abandons anyway.
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(32),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if authenticated:
        key = signing_key_ensure()
        config["auth"] = {"token": {"realm": token_url or settings.SANDCLOUD_REGISTRY["TOKEN_URL"],
                                    "service": tokens.SERVICE, "issuer": tokens.ISSUER,
                                    "rootcertbundle": str(key.certificate_path)}}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name or 'config'}-{port}.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _program() -> str:
    program = shutil.which(PROGRAM)
    if program is None:
        raise RuntimeError(f"{PROGRAM} is not installed: ops/system-deps.sh installs Debian's docker-registry")
    return program


def registry_command(*, config_path: Path) -> list[str]:
    return [_program(), "serve", str(config_path)]


def garbage_collect_command(*, config_path: Path) -> list[str]:
    """Deletes the blobs no manifest references. Untagged manifests stay (as untagged images do in ECR, until a
    lifecycle policy or BatchDeleteImage removes them), so no --delete-untagged."""
    return [_program(), "garbage-collect", str(config_path)]


async def registry_serve(*, port: int, token_url: str, ready=None) -> None:
    """Runs docker-registry on a free loopback port and the front (front.py) on 127.0.0.1:`port` until SIGTERM or
    SIGINT, or until docker-registry exits (then this exits too, for the process manager to restart both)."""
    import asyncio
    import signal
    import socket

    from aiohttp import web

    from .front import Front, application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        internal = probe.getsockname()[1]
    config_path = registry_config_write(port=internal, token_url=token_url)
    child = await asyncio.create_subprocess_exec(*registry_command(config_path=config_path))
    runner = None
    try:
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", internal)
                writer.close()
                break
            except OSError:
                if child.returncode is not None:
                    raise RuntimeError(f"docker-registry exited with code {child.returncode}") from None
                await asyncio.sleep(0.1)
        registry = settings.SANDCLOUD_REGISTRY
        front = Front(upstream=f"http://127.0.0.1:{internal}", config_path=config_path,
                      quota_bytes=registry["QUOTA_MB"] * 1024 * 1024, idle_seconds=registry["PUSH_IDLE_SECONDS"],
                      drain_seconds=registry["GC_DRAIN_SECONDS"])
        runner = web.AppRunner(application(front), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        if ready is not None:
            ready(internal)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        exited = asyncio.ensure_future(child.wait())
        await asyncio.wait([exited, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if runner is not None:
            await runner.cleanup()
        if child.returncode is None:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), timeout=15)
            except asyncio.TimeoutError:
                child.kill()
                await child.wait()
        config_path.unlink(missing_ok=True)
