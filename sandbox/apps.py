"""The sandbox engine: each learner's real, hardened containers on the Docker Engine."""
from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandboxes"

    def ready(self):
        from . import recording  # noqa: F401 - connects the receiver that deletes a recording's file with its row
