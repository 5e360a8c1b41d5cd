"""`manage.py registry`: runs ECR's registry (docker-registry) in the foreground on SANDCLOUD_REGISTRY_PORT."""
from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.registry.server import registry_command, registry_config_write


class Command(BaseCommand):
    help = ("Writes the registry's config (token authentication against this site's /registry/token, storage under "
            "SANDCLOUD_REGISTRY_DIR) and replaces this process with docker-registry, for a process manager to run.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.SANDCLOUD_REGISTRY["PORT"])
        parser.add_argument("--token-url", default=settings.SANDCLOUD_REGISTRY["TOKEN_URL"],
                            help="the realm clients are sent to for bearer tokens (this site's /registry/token)")

    def handle(self, *args, port: int, token_url: str, **options):
        config_path = registry_config_write(port=port, token_url=token_url)
        command = registry_command(config_path=config_path)
        self.stderr.write(f"registry on 127.0.0.1:{port}, tokens from {token_url}, config {config_path}")
        os.execv(command[0], command)  # signals from the process manager reach the registry itself
