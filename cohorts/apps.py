"""Cohorts: instructors, the learners who joined with an invite code, and the instructor's live dashboard."""
from django.apps import AppConfig


class CohortsConfig(AppConfig):
    name = "cohorts"
