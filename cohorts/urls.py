"""URLs of cohorts and the instructor dashboard."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.cohort_index, name="cohort-index"),
    path("<int:cohort_id>/", views.cohort_dashboard, name="cohort-dashboard"),
    path("<int:cohort_id>/matrix/", views.cohort_matrix_partial, name="cohort-matrix"),
    path("<int:cohort_id>/sandboxes/", views.cohort_sandboxes_partial, name="cohort-sandboxes"),
    path("<int:cohort_id>/sandboxes/<int:sandbox_id>/<str:action>/", views.cohort_sandbox_action,
         name="cohort-sandbox-action"),
    path("<int:cohort_id>/learners/<int:learner_id>/", views.cohort_learner, name="cohort-learner"),
    path("<int:cohort_id>/roster/", views.cohort_roster, name="cohort-roster"),
    path("<int:cohort_id>/roster/passwords.csv", views.cohort_roster_passwords_csv, name="cohort-roster-passwords"),
    path("<int:cohort_id>/roster/<str:action>/", views.cohort_roster_action, name="cohort-roster-action"),
    path("<int:cohort_id>/class-sessions/", views.cohort_class_sessions, name="cohort-class-sessions"),
    path("<int:cohort_id>/class-sessions/<int:session_id>/cancel/", views.cohort_class_session_cancel,
         name="cohort-class-session-cancel"),
    path("<int:cohort_id>/gradebook.csv", views.cohort_gradebook_csv, name="cohort-gradebook"),
    path("recordings/<int:sandbox_id>/", views.recording_player, name="recording-player"),
]
