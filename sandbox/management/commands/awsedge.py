"""`manage.py awsedge`: serves the AWS endpoint, and nothing else of the site, where sandboxes reach it."""
import os
import shutil
import socket
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.awsapi.edge import EDGE_PREFIX
from sandbox.engine.docker import EngineError
from sandbox.engine.host_gateway import host_gateway_address
from sandbox.policy import AWS_EDGE_HOST


class Command(BaseCommand):
    help = ("Serve the AWS endpoint (only /aws) to sandboxes: a daphne process of its own (config/edge_asgi.py) on "
            "the host's address Docker calls host-gateway, port SANDCLOUD_AWS_EDGE_PORT, which ops/firewall.sh opens "
            f"to sandboxes. Sandboxes call it http://{AWS_EDGE_HOST}:<port>{EDGE_PREFIX}.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.SANDCLOUD_AWS_EDGE_PORT,
                            help="default SANDCLOUD_AWS_EDGE_PORT; one of SANDCLOUD_AWS_EDGE_PORTS")

    def handle(self, *args, port, **options):
        first, last = settings.SANDCLOUD_AWS_EDGE_PORTS
        if not first <= port <= last:
            raise CommandError(f"Port {port} is not one ops/firewall.sh opens to sandboxes ({first}-{last}, "
                               f"SANDCLOUD_AWS_EDGE_PORTS).")
        try:
            address = host_gateway_address()
        except EngineError as error:
            raise CommandError(f"Cannot tell where sandboxes reach this host: {getattr(error, 'detail', error)}") \
                from error
        try:
            socket.create_server((address, port)).close()
        except OSError as error:
            raise CommandError(f"Cannot listen on {address}:{port} ({os.strerror(error.errno)}). Is another "
                               f"Sandcloud install's edge there? Give this one SANDCLOUD_AWS_EDGE_PORT between "
                               f"{first} and {last}.") from error
        daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or shutil.which("daphne")
        if daphne is None:
            raise CommandError("daphne is not installed (make deps installs it).")
        self.stdout.write(f"AWS endpoint for sandboxes: http://{AWS_EDGE_HOST}:{port}{EDGE_PREFIX} "
                          f"(listening on {address}:{port})")
        sys.stdout.flush()
        # Replaced by daphne, so signals (Ctrl-C, honcho, a test's SIGTERM) reach the server itself.
        os.execv(daphne, [daphne, "-b", address, "-p", str(port), "config.edge_asgi:application"])
