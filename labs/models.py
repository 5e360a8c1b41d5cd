"""Labs and steps imported from labs/content (`manage.py labs load`), learners' graded attempts and revealed hints."""
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .format import Scoring


class Lab(models.Model):
    class Difficulty(models.TextChoices):
        BEGINNER = "beginner", "Beginner"
        INTERMEDIATE = "intermediate", "Intermediate"
        ADVANCED = "advanced", "Advanced"

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField()
    lesson_slug = models.SlugField(max_length=100, blank=True)
    difficulty = models.CharField(max_length=20, choices=Difficulty.choices)
    estimated_minutes = models.PositiveIntegerField()
    # The sandbox a learner gets: image ("" = the workstation), runtime, cpus, memory_mb, pids, capabilities,
    # time_limit_minutes, exactly as lab.yaml's environment says.
    environment = models.JSONField(default=dict)
    max_attempts = models.PositiveIntegerField(default=0, help_text="Checks allowed per step; 0 means unlimited.")
    penalty_per_failed_attempt = models.PositiveIntegerField(default=0)
    hint_cost = models.PositiveIntegerField(default=0)
    source_hash = models.CharField(max_length=64)
    # A lab whose folder disappears is unpublished, not deleted, so learners keep their attempts.
    is_published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def scoring(self) -> Scoring:
        return Scoring(max_attempts=self.max_attempts, penalty_per_failed_attempt=self.penalty_per_failed_attempt,
                       hint_cost=self.hint_cost)

    @property
    def runtime(self) -> str:
        return self.environment.get("runtime", "runc")


class LabStep(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="steps")
    slug = models.SlugField(max_length=100)
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    instructions_html = models.TextField(help_text="Sanitised HTML rendered from the step's Markdown.")
    setup_script = models.TextField(blank=True)
    check_script = models.TextField(blank=True)
    check_python = models.CharField(max_length=200, blank=True, help_text="package.module:function")
    check_timeout = models.PositiveIntegerField(default=20, help_text="Seconds.")
    hints = models.JSONField(default=list, blank=True)
    solution_script = models.TextField()
    points = models.PositiveIntegerField(default=0)
    open_file = models.CharField(max_length=1024, blank=True,
                                 help_text="A file under the learner's home the editor opens when the step starts.")
    # A step removed from lab.yaml after learners attempted it is retired rather than deleted.
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["lab", "position"]
        constraints = [models.UniqueConstraint(fields=["lab", "slug"], name="labs_step_slug_unique")]

    def __str__(self) -> str:
        return f"{self.lab.slug}/{self.slug}"


class Attempt(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Checking"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Not yet"
        TIMED_OUT = "timed_out", "Timed out"
        ERROR = "error", "Could not run"  # the sandbox or the platform failed, not the learner: never counted

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_attempts")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="attempts")
    step = models.ForeignKey(LabStep, on_delete=models.CASCADE, related_name="attempts")
    sandbox = models.ForeignKey("sandbox.Sandbox", on_delete=models.SET_NULL, null=True, related_name="lab_attempts")
    # The Celery task id the attempt was queued under: one row per check press, so a redelivered task finds its row.
    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    passed = models.BooleanField(default=False)
    message = models.TextField(blank=True, help_text="What the learner is shown.")
    points = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    output = models.TextField(blank=True, help_text="The check's full output: for staff, never shown to learners.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    FINISHED = (Status.PASSED, Status.FAILED, Status.TIMED_OUT, Status.ERROR)
    COUNTED = (Status.PENDING, Status.RUNNING, Status.PASSED, Status.FAILED, Status.TIMED_OUT)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "step", "status"])]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.user} on {self.step} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class HintReveal(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_hints")
    step = models.ForeignKey(LabStep, on_delete=models.CASCADE, related_name="hint_reveals")
    index = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["step", "index"]
        constraints = [models.UniqueConstraint(fields=["user", "step", "index"], name="labs_hint_reveal_unique")]


class LabSandbox(models.Model):
    """A sandbox the labs app started for a lab (lab_start, step_reset), with the lab's environment: the only kind of
    sandbox a check grades. It also records whether the setup of the step the learner is on has run in it, so a setup
    task lost with its worker or its queue is found and run again."""

    class Setup(models.TextChoices):
        PENDING = "pending", "Waiting to run"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"  # the script itself failed: the learner is told to reset, nothing re-runs it

    sandbox = models.OneToOneField("sandbox.Sandbox", on_delete=models.CASCADE, related_name="lab_sandbox")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="sandboxes")
    step = models.ForeignKey(LabStep, on_delete=models.CASCADE, related_name="+",
                             help_text="The step whose setup the sandbox gets (or got) last.")
    setup = models.CharField(max_length=10, choices=Setup.choices, default=Setup.PENDING, db_index=True)
    setup_queued_at = models.DateTimeField(default=timezone.now)
    setup_finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sandbox {self.sandbox_id} for {self.step} (setup {self.setup})"
