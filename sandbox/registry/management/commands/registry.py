"""`manage.py registry`: runs ECR's registry in the foreground: docker-registry on an internal loopback port behind
the front (sandbox/registry/front.py) on SANDCLOUD_REGISTRY_PORT, for a process manager to run."""
from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.registry.server import registry_serve


class Command(BaseCommand):
    help = ("Writes the registry's config (token authentication against this site's /registry/token, storage under "
            "SANDCLOUD_REGISTRY_DIR), runs docker-registry on a free loopback port and the front on --port.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.SANDCLOUD_REGISTRY["PORT"])
        parser.add_argument("--token-url", default=settings.SANDCLOUD_REGISTRY["TOKEN_URL"],
                            help="the realm clients are sent to for bearer tokens (this site's /registry/token)")

    def handle(self, *args, port: int, token_url: str, **options):
        def ready(internal: int) -> None:
            self.stderr.write(f"registry on 127.0.0.1:{port} (docker-registry on 127.0.0.1:{internal}), "
                              f"tokens from {token_url}")
        asyncio.run(registry_serve(port=port, token_url=token_url, ready=ready))
