"""The one error the scheduler's services raise: AWS's code and words for the API, a plain sentence for the console."""
from __future__ import annotations

from sandbox.awsapi.errors import AwsError

# The HTTP statuses Scheduler's model gives its errors (botocore's scheduler-2021-06-30), and IAM's refusal.
STATUS = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
}


class ScheduleError(AwsError):
    """Raised by services and selectors. The AWS API answers `code` and `message` (AWS's words, where we know them);
    the console shows `plain`, which says what to do next."""

    def __init__(self, code: str, message: str, *, plain: str = ""):
        super().__init__(code, message, status=STATUS.get(code, 400))
        self.plain = plain or message


def schedule_not_found(name: str) -> ScheduleError:
    # AWS's words (confirmed: LocalStack's snapshot recorded against AWS, "Schedule not-existing-schedule-name does
    # not exist.", 404).
    return ScheduleError("ResourceNotFoundException", f"Schedule {name} does not exist.",
                         plain=f"There is no schedule called {name}.")


def group_not_found(group_name: str) -> ScheduleError:
    # Sandcloud has only the default group. The wording is ours (not confirmed against AWS).
    return ScheduleError("ResourceNotFoundException", f"Schedule group {group_name} does not exist.",
                         plain="Sandcloud has only the schedule group called default.")
