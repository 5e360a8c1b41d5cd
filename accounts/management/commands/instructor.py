"""`manage.py instructor add USER` makes an account a staff instructor (who may create cohorts); `remove` undoes it."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Make an existing account an instructor (staff), or take that away."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove"])
        parser.add_argument("username")

    def handle(self, *args, action: str, username: str, **options):
        user = get_user_model().objects.filter(username__iexact=username.strip()).first()
        if user is None:
            raise CommandError(f"No account is called {username!r}. The person signs up first, or an operator "
                               f"makes one with `manage.py createsuperuser`.")
        if not user.is_active:
            raise CommandError(f"{user.get_username()} is deactivated (or a deleted learner); reactivate it in the "
                               f"admin first.")
        user.is_staff = action == "add"
        user.save(update_fields=["is_staff"])
        if action == "add":
            self.stdout.write(f"{user.get_username()} is an instructor: they can create cohorts on the Cohorts page.")
        else:
            self.stdout.write(f"{user.get_username()} is no longer an instructor; their cohorts stay, without a "
                              f"dashboard.")
