"""The registry process: Debian's docker-registry (CNCF distribution 2.8), its config, and the command that runs it."""
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


def registry_config_write(*, port: int, token_url: str | None = None) -> Path:
    """Writes the registry's config for a listener on 127.0.0.1:`port` (JSON, which its YAML reader takes) and
    returns its path: local-disk storage, deletes allowed (the platform removes images), and token authentication
    trusting only the platform's certificate, with `token_url` (default SANDCLOUD_REGISTRY["TOKEN_URL"]) as realm."""
    key = signing_key_ensure()
    directory = Path(settings.SANDCLOUD_REGISTRY["DIR"])
    storage_dir().mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage_dir())}, "delete": {"enabled": True}},
        # A fresh secret each start: it only signs upload state, which a restart abandons anyway.
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(32),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"token": {"realm": token_url or settings.SANDCLOUD_REGISTRY["TOKEN_URL"], "service": tokens.SERVICE,
                           "issuer": tokens.ISSUER, "rootcertbundle": str(key.certificate_path)}},
    }
    path = directory / f"config-{port}.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def registry_command(*, config_path: Path) -> list[str]:
    program = shutil.which(PROGRAM)
    if program is None:
        raise RuntimeError(f"{PROGRAM} is not installed: ops/system-deps.sh installs Debian's docker-registry")
    return [program, "serve", str(config_path)]
