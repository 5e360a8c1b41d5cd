"""Hands-on labs and how they are graded (the lab catalogue arrives with the lessons issue)."""
from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "labs"
