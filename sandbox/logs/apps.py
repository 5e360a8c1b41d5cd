"""The CloudWatch Logs app: registers its AWS API with the edge endpoint when Django starts."""
from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "sandbox.logs"
    label = "logs"
    verbose_name = "CloudWatch Logs"

    def ready(self) -> None:
        from sandbox.awsapi import providers

        from .api import LogsApi

        providers.provider_register("logs", LogsApi)
