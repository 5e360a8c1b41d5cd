"""CloudWatch Logs as rows: a learner's log groups, the streams in them, and the events written to the streams."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from sandbox.awsapi.models import AwsAccount


class LogGroup(models.Model):
    """A log group in a learner's account, e.g. `/aws/lambda/hello`; its name is unique in the account."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="log_groups")
    name = models.CharField(max_length=512)
    created = models.DateTimeField(default=timezone.now)
    # None is AWS's "Never expire"; the expiry task still keeps events at most SANDCLOUD_LOGS_MAX_DAYS.
    retention_in_days = models.PositiveIntegerField(null=True, blank=True)
    log_group_class = models.CharField(max_length=20, default="STANDARD")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="logs_group_name_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def creation_time(self) -> int:
        return int(self.created.timestamp() * 1000)


class LogStream(models.Model):
    """A sequence of events from one source, e.g. one execution environment of a function."""

    group = models.ForeignKey(LogGroup, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=512)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="logs_stream_name_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def creation_time(self) -> int:
        return int(self.created.timestamp() * 1000)


class LogEvent(models.Model):
    """One log line. Times are milliseconds since the epoch, as the API speaks them.

    `group` repeats `stream.group` so that a group is read by time (FilterLogEvents, `aws logs tail`, the expiry
    task) or in the order it was stored (a console polling) from one index, without a join; the composite indexes
    replace the foreign keys' own.
    """

    stream = models.ForeignKey(LogStream, on_delete=models.CASCADE, related_name="events", db_index=False)
    group = models.ForeignKey(LogGroup, on_delete=models.CASCADE, related_name="events", db_index=False)
    timestamp = models.BigIntegerField()  # when it happened, as the writer says
    ingestion_time = models.BigIntegerField()  # when Sandcloud stored it
    message = models.TextField()
    # The message's UTF-8 bytes plus the 26 bytes CloudWatch counts for every event: what the storage cap adds up.
    size = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["stream", "timestamp", "id"], name="logs_event_stream_time"),
            models.Index(fields=["group", "timestamp", "id"], name="logs_event_group_time"),
            # A console page asks a group for the events stored after the last one it showed.
            models.Index(fields=["group", "id"], name="logs_event_group_stored"),
        ]

    def __str__(self) -> str:
        return self.message[:80]
