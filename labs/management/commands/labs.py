"""`manage.py labs validate` checks every lab folder (errors as path:line: message); `labs load` imports them;
`labs start --user U --lab SLUG` starts a learner's sandbox for a lab, as the lab's page does."""
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labs.format import CONTENT_DIR, labs_read
from labs.models import Lab
from labs.services import LabRefused, lab_start, labs_load
from sandbox.engine.docker import EngineError, engine


def _image_exists(image: str) -> bool:
    try:
        return engine().has_image(image)
    except EngineError:
        return True  # without an engine we cannot tell; the other checks still run


class Command(BaseCommand):
    help = "Validate or load the labs in labs/content."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["validate", "load", "start"])
        parser.add_argument("--lab", help="start: the lab's slug")
        parser.add_argument("--user", help="start: the learner's username")
        parser.add_argument("--root", type=Path, default=CONTENT_DIR, help="The folder holding one folder per lab.")
        parser.add_argument("--no-images", action="store_true", help="Do not ask Docker whether images are built.")

    def handle(self, *args, action, root, no_images, lab=None, user=None, **options):
        if action == "start":
            self._start(slug=lab, username=user)
            return
        if action == "validate":
            labs, errors = labs_read(root, image_exists=None if no_images else _image_exists,
                                     default_image=settings.SANDCLOUD["WORKSTATION_IMAGE"])
            for error in errors:
                self.stderr.write(str(error))
            if errors:
                raise CommandError(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in the labs")
            self.stdout.write(f"{len(labs)} labs OK")
            return
        report = labs_load(root=root)
        for error in report.errors:
            self.stderr.write(str(error))
        self.stdout.write(f"labs: {len(report.created)} created, {len(report.updated)} updated, "
                          f"{len(report.unchanged)} unchanged, {len(report.unpublished)} unpublished")
        if report.errors:
            raise CommandError(f"{len(report.errors)} errors: those labs were not loaded")

    def _start(self, *, slug: str | None, username: str | None) -> None:
        if not slug or not username:
            raise CommandError("Usage: manage.py labs start --user USERNAME --lab LAB_SLUG")
        learner = get_user_model().objects.filter(username=username).first()
        if learner is None:
            raise CommandError(f"No user named {username!r}.")
        lab = Lab.objects.filter(slug=slug, is_published=True).first()
        if lab is None:
            raise CommandError(f"No published lab {slug!r} (manage.py labs load imports them).")
        try:
            sandbox = lab_start(user=learner, lab=lab)
        except (LabRefused, EngineError) as refusal:
            raise CommandError(str(refusal)) from refusal
        # A worker provisions it and runs the step's setup, as for a start from the lab's page.
        self.stdout.write(f"{sandbox.pk} {sandbox.state}")
