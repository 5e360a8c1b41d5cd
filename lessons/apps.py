"""Lessons: what to learn, written in Markdown in the repository (content arrives with the lessons issue)."""
from django.apps import AppConfig


class LessonsConfig(AppConfig):
    name = "lessons"
