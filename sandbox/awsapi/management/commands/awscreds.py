"""`manage.py awscreds <username>`: the export lines that point a shell's aws CLI and boto3 at the learner's account."""
import shlex

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sandbox.awsapi.identity import aws_environment_for


class Command(BaseCommand):
    help = ("Print export lines (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL) "
            "for a user, creating an access key if they have no active one. Use: eval \"$(manage.py awscreds ada)\".")

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username__iexact=username).first()
        if user is None:
            raise CommandError(f"No user is called {username!r}.")
        for name, value in aws_environment_for(user=user).items():
            self.stdout.write(f"export {name}={shlex.quote(value)}")
