"""`manage.py dockerproxy`: serves each workstation's Docker socket (sandbox/dockerproxy) until stopped."""
from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.dockerproxy.server import DockerProxy


class Command(BaseCommand):
    help = ("Serves the Docker Engine API, checked and namespaced per learner, on a Unix socket per workstation uid "
            "under SANDCLOUD_DOCKER_PROXY_DIR; each workstation has its own mounted at /run/sandcloud/docker.")

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=None, help="where the per-uid socket directories are (default: setting)")

    def handle(self, *args, dir: str | None, **options):
        if dir:
            # The volumes' filesystems live beside the sockets (sandbox/dockerproxy/volumes.py reads the setting).
            settings.SANDCLOUD_DOCKER_PROXY = {**settings.SANDCLOUD_DOCKER_PROXY, "DIR": dir}
        proxy = DockerProxy(directory=dir)
        self.stderr.write(f"docker proxy: sockets under {proxy.directory}, engine at {proxy.engine}")
        try:
            asyncio.run(proxy.serve_forever())
        except KeyboardInterrupt:
            pass
