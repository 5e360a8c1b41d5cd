"""Creates the demo accounts that `make run` prints (idempotent; passwords are reset to the documented ones)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = [
    ("learner", "learner-pass", False),
    ("learner2", "learner-pass", False),
    ("instructor", "instructor-pass", True),
]


class Command(BaseCommand):
    help = "Create or reset the demo learner and instructor accounts."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, staff in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = staff
            user.set_password(password)
            user.save()
            self.stdout.write(f"  {'instructor' if staff else 'learner':<10}  {username} / {password}")
