"""Admin view of learners' schedules, for operators looking into what fired and what did not."""
from django.contrib import admin

from .models import Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "expression", "timezone", "state", "next_fire_at", "last_fired_at",
                    "last_result")
    list_filter = ("state",)
    search_fields = ("name", "account__account_id", "target_arn")
    readonly_fields = ("next_fire_at", "last_occurrence", "last_fired_at", "last_result", "created", "modified")
