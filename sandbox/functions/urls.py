"""URLs of the Lambda console: the learner's own under /functions/, and the same pages of a learner's for their
instructors under /functions/learner/<user id>/ (read-only: every POST there is refused with 403)."""
from django.urls import include, path

from . import views

app_name = "functions"


def _pages(prefix: str) -> list:
    return [
        path("", views.function_list, name=f"{prefix}list"),
        path("<str:name>/", views.function_detail, name=f"{prefix}detail"),
        path("<str:name>/code/", views.function_code, name=f"{prefix}code"),
        path("<str:name>/configuration/", views.function_configuration, name=f"{prefix}configuration"),
        path("<str:name>/invoke/", views.function_invoke, name=f"{prefix}invoke"),
        path("<str:name>/logs/", views.function_logs, name=f"{prefix}logs"),
        path("<str:name>/monitoring/", views.function_monitoring, name=f"{prefix}monitoring"),
        path("<str:name>/delete/", views.function_delete, name=f"{prefix}delete"),
        path("<str:name>/schedules/", views.function_schedules, name=f"{prefix}schedules"),
        path("<str:name>/schedules/<str:schedule_name>/delete/", views.function_schedule_delete,
             name=f"{prefix}schedule-delete"),
    ]


urlpatterns = [
    path("learner/<int:learner_id>/", include(_pages("learner-"))),
    *_pages(""),
]
