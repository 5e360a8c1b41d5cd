"""Creates the demo accounts that `make run` prints, and a demo cohort joining them (idempotent)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from cohorts.models import Cohort, Membership

DEMO_USERS = [
    ("learner", "learner-pass", False),
    ("learner2", "learner-pass", False),
    ("instructor", "instructor-pass", True),
]
DEMO_COHORT_CODE = "DEMO2026"


class Command(BaseCommand):
    help = "Create or reset the demo learner and instructor accounts and their demo cohort."

    def handle(self, *args, **options):
        User = get_user_model()
        users = {}
        for username, password, staff in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = staff
            user.set_password(password)
            user.save()
            users[username] = user
            self.stdout.write(f"  {'instructor' if staff else 'learner':<10}  {username} / {password}")
        cohort, _ = Cohort.objects.get_or_create(invite_code=DEMO_COHORT_CODE,
                                                 defaults={"name": "Demo cohort", "instructor": users["instructor"]})
        if cohort.is_closed:  # the demo's sign-up with this code must work again after someone closed it
            cohort.is_closed = False
            cohort.save(update_fields=["is_closed"])
        for username in ("learner", "learner2"):
            Membership.objects.get_or_create(cohort=cohort, learner=users[username])
        self.stdout.write(f"  cohort      {cohort.name} (invite code {cohort.invite_code}) with learner and learner2")
