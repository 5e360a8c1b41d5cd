"""Staff views of labs and attempts (attempt output, hidden from learners, is readable here)."""
from django.contrib import admin

from .models import Attempt, HintReveal, Lab, LabSandbox, LabStep


class LabStepInline(admin.TabularInline):
    model = LabStep
    fields = ["position", "slug", "title", "points", "check_timeout", "is_active"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "difficulty", "is_published", "updated_at"]
    readonly_fields = ["source_hash", "updated_at"]
    inlines = [LabStepInline]


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["pk", "user", "lab", "step", "status", "points", "duration_ms", "created_at"]
    list_filter = ["status", "lab"]
    search_fields = ["user__username"]
    readonly_fields = [f.name for f in Attempt._meta.fields]


admin.site.register(HintReveal)


@admin.register(LabSandbox)
class LabSandboxAdmin(admin.ModelAdmin):
    list_display = ["sandbox", "lab", "step", "setup", "setup_queued_at", "setup_finished_at"]
    list_filter = ["setup", "lab"]
    readonly_fields = [f.name for f in LabSandbox._meta.fields]
