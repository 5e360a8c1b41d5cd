"""Operator commands: `manage.py sandbox images|start|list|stop|exec|reap|pool`."""
import json
import time
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sandbox import selectors, services
from sandbox.engine.docker import EngineError, engine
from sandbox.engine.images import ImageBuildError, default_recipes, ensure_images
from sandbox.engine.runtime_images import runtime_image_ensure
from sandbox.models import Runtime, Sandbox
from sandbox.states import State


class Command(BaseCommand):
    help = "Operate learner sandboxes: build images, start, list, stop, exec into and reap them."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        images = sub.add_parser("images", help="build the sandbox images (docker pull first, else debootstrap)")
        images.add_argument("--force", action="store_true", help="rebuild even when up to date")

        start = sub.add_parser("start", help="start a sandbox for a user and wait until it runs")
        start.add_argument("--user", required=True)
        start.add_argument("--lab", default="", help="refused: `manage.py labs start` starts a lab's sandbox")
        start.add_argument("--runtime", choices=Runtime.values, default=Runtime.RUNC)

        listing = sub.add_parser("list", help="list sandboxes (active ones unless --all)")
        listing.add_argument("--json", action="store_true")
        listing.add_argument("--all", action="store_true")

        stop = sub.add_parser("stop", help="stop sandboxes")
        stop.add_argument("ids", nargs="*", type=int)
        stop.add_argument("--all", action="store_true", help="every active sandbox and the warm pool")

        run = sub.add_parser("exec", help="run a command in a sandbox as its learner")
        run.add_argument("id", type=int)
        run.add_argument("argv", nargs="+")
        run.add_argument("--timeout", type=int, default=30)

        sub.add_parser("reap", help="expire old or idle sandboxes and reconcile Docker with the database")
        pool = sub.add_parser("pool", help="fill (default) or drain the warm pool")
        pool.add_argument("--drain", action="store_true")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except (EngineError, services.SandboxError, ImageBuildError) as error:
            raise CommandError(str(error)) from error

    def do_images(self, *, force, **_):
        config = settings.SANDCLOUD
        recipes = default_recipes(workstation_tag=config["WORKSTATION_IMAGE"], python_tag=config["PYTHON_IMAGE"],
                                  pull=config["PULL"])
        docker = engine()
        docker.ping()
        built = ensure_images(recipes, client=docker.client, out=self.stdout, force=force)
        # Lambda's runtime image is built on the python image (sandbox/engine/runtime_images.py).
        lambda_built = runtime_image_ensure(client=docker.client, tag=settings.SANDCLOUD_FUNCTIONS["RUNTIME_IMAGE"],
                                            base=config["PYTHON_IMAGE"], out=self.stdout, force=force)
        total = len(recipes) + 1
        count = len(built) + int(lambda_built)
        self.stdout.write(f"images ready ({count} built, {total - count} cached)")

    def do_start(self, *, user, lab, runtime, **_):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}.")
        if lab:
            # Only the labs app gives a sandbox the lab's environment and setup, and only such a sandbox is graded.
            raise CommandError(f"A lab's sandbox starts with `manage.py labs start --user {user} --lab {lab}`.")
        sandbox = services.sandbox_request(owner=owner, runtime=runtime)
        deadline = time.monotonic() + 2
        while sandbox.state == State.REQUESTED and time.monotonic() < deadline:
            time.sleep(0.1)  # a running worker picks the request up within milliseconds
            sandbox.refresh_from_db()
        if sandbox.state == State.REQUESTED:
            # No worker is running: provision here. Only one caller can claim the row, so a late worker is harmless.
            services.sandbox_provision(sandbox_id=sandbox.pk)
        deadline = time.monotonic() + 120
        while sandbox.state in (State.REQUESTED, State.PROVISIONING) and time.monotonic() < deadline:
            time.sleep(0.1)
            sandbox.refresh_from_db()
        if sandbox.state != State.RUNNING:
            raise CommandError(f"sandbox {sandbox.pk} {sandbox.state}: {sandbox.failure_reason}")
        self.stdout.write(f"sandbox {sandbox.pk} container {sandbox.container_id}")

    def do_list(self, *, all: bool, **options):
        queryset = Sandbox.objects.select_related("owner") if all else selectors.sandboxes_active()
        rows = [{"id": s.pk, "owner": s.owner.get_username(), "state": s.state, "runtime": s.runtime,
                 "image": s.image, "container_id": s.container_id, "lab": s.lab_slug,
                 "created_at": s.created_at.isoformat(), "expires_at": s.expires_at.isoformat()}
                for s in queryset.order_by("pk")]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            self.stdout.write(f"{row['id']:>6}  {row['owner']:<16} {row['state']:<12} {row['runtime']:<6} "
                              f"{row['container_id'][:12]:<12} {row['lab']}")

    def do_stop(self, *, ids, all, **_):
        if all:
            ids = list(selectors.sandboxes_active().values_list("pk", flat=True))
            self.stdout.write(f"warm pool: removed {services.warm_pool_drain()} containers")
        for sandbox_id in ids:
            sandbox = services.sandbox_stop(sandbox_id=sandbox_id)
            self.stdout.write(f"sandbox {sandbox.pk} {sandbox.state}")

    def do_exec(self, *, id, argv, timeout, **_):
        sandbox = Sandbox.objects.filter(pk=id).first()
        if sandbox is None:
            raise CommandError(f"No sandbox {id}.")
        command = argv if len(argv) > 1 else ["bash", "-lc", argv[0]] if " " in argv[0] else argv
        exit_code, output = services.sandbox_exec(sandbox=sandbox, command=command, timeout=timeout)
        self.stdout.write(output, ending="")
        if exit_code:
            sys.exit(exit_code)

    def do_reap(self, **_):
        counts = services.sandbox_reap()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

    def do_pool(self, *, drain, **_):
        if drain:
            self.stdout.write(f"warm pool: removed {services.warm_pool_drain()} containers")
        else:
            self.stdout.write(f"warm pool: started {services.warm_pool_fill()} containers")

