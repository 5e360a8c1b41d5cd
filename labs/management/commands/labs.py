"""`manage.py labs validate` checks every lab folder (errors as path:line: message); `manage.py labs load` imports them."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labs.format import CONTENT_DIR, labs_read
from labs.services import labs_load
from sandbox.engine.docker import EngineError, engine


def _image_exists(image: str) -> bool:
    try:
        return engine().has_image(image)
    except EngineError:
        return True  # without an engine we cannot tell; the other checks still run


class Command(BaseCommand):
    help = "Validate or load the labs in labs/content."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["validate", "load"])
        parser.add_argument("--root", type=Path, default=CONTENT_DIR, help="The folder holding one folder per lab.")
        parser.add_argument("--no-images", action="store_true", help="Do not ask Docker whether images are built.")

    def handle(self, *args, action, root, no_images, **options):
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
