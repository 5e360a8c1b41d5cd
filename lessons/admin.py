"""Admin: lessons are read-only here (edit the Markdown and run `manage.py lessons load`); submissions for support."""
from django.contrib import admin

from .models import Lesson, QuizQuestion, QuizSubmission


class QuizQuestionInline(admin.TabularInline):
    model = QuizQuestion
    fields = ["position", "kind", "prompt"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ["order", "slug", "title", "is_published", "updated_at"]
    list_filter = ["is_published"]
    readonly_fields = ["slug", "title", "order", "summary", "prerequisites", "lab_slugs", "source_path",
                       "source_hash", "is_published", "updated_at"]
    exclude = ["body_html"]
    inlines = [QuizQuestionInline]

    def has_add_permission(self, request):
        return False


@admin.register(QuizSubmission)
class QuizSubmissionAdmin(admin.ModelAdmin):
    list_display = ["created", "user", "lesson", "score", "total"]
    list_filter = ["lesson"]
    readonly_fields = ["user", "lesson", "answers", "score", "total", "created"]

    def has_add_permission(self, request):
        return False
