"""Lessons imported from lessons/content, their quiz questions, and learners' quiz submissions."""
from django.conf import settings
from django.db import models


class Lesson(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0)
    summary = models.TextField()
    body_html = models.TextField(help_text="Sanitised HTML rendered from lesson.md; never edit by hand.")
    prerequisites = models.JSONField(default=list, blank=True, help_text="Slugs of lessons to read first.")
    lab_slugs = models.JSONField(default=list, blank=True, help_text="Slugs of the labs this lesson leads to.")
    source_path = models.CharField(max_length=300, help_text="The lesson's folder, relative to the content directory.")
    source_hash = models.CharField(max_length=64)
    # A lesson whose folder disappears is unpublished, not deleted, so learners' submissions keep their lesson.
    is_published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


class QuizQuestion(models.Model):
    class Kind(models.TextChoices):
        CHOICE = "choice", "Multiple choice"
        SHORT = "short", "Short answer"

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    prompt = models.TextField()
    choices = models.JSONField(default=list, blank=True)
    correct_choice = models.PositiveSmallIntegerField(null=True, blank=True)
    accepted_answers = models.JSONField(default=list, blank=True)
    explanation = models.TextField()

    class Meta:
        ordering = ["lesson", "position"]
        constraints = [models.UniqueConstraint(fields=["lesson", "position"], name="quiz_question_position_unique")]

    def __str__(self) -> str:
        return f"{self.lesson.slug} Q{self.position}"


class QuizSubmission(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_submissions")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="submissions")
    # A snapshot per question ({"position", "prompt", "given", "correct", "explanation"}) so a past result still
    # reads the same after the quiz is edited.
    answers = models.JSONField(default=list)
    score = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["user", "lesson", "-created"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.lesson.slug} · {self.score}/{self.total}"
