"""Operator command: `manage.py lessons load` imports lessons/content into the database."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons import services
from lessons.sources import CONTENT_DIR


class Command(BaseCommand):
    help = "Manage lessons: `load` imports or updates them from the Markdown content folder."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="import new and changed lessons; unpublish removed ones (idempotent)")
        load.add_argument("--content-dir", type=Path, default=CONTENT_DIR,
                          help=f"folder holding one folder per lesson (default: {CONTENT_DIR})")

    def handle(self, *args, action, **options):
        if action == "load":
            self._load(options["content_dir"])

    def _load(self, content_dir: Path):
        if not content_dir.is_dir():
            raise CommandError(f"{content_dir}: no such folder")
        try:
            report = services.lessons_load(content_dir=content_dir)
        except services.LessonLoadError as error:
            for problem in error.errors:
                self.stderr.write(str(problem))
            raise CommandError(f"{len(error.errors)} problem(s) in the lesson content; nothing was imported") from None
        for label, slugs in (("created", report.created), ("updated", report.updated),
                             ("unpublished", report.unpublished)):
            for slug in slugs:
                self.stdout.write(f"  {label:<11} {slug}")
        self.stdout.write(f"{report.changed} changed ({len(report.created)} created, {len(report.updated)} updated, "
                          f"{len(report.unpublished)} unpublished), {len(report.unchanged)} unchanged")
