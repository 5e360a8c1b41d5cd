"""EventBridge Scheduler: schedules that fire a learner's Lambda functions, over the AWS API and the console."""
from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "sandbox.scheduler"
    label = "scheduler"
    verbose_name = "EventBridge Scheduler"

    def ready(self) -> None:
        from sandbox.awsapi import providers

        from .api import SchedulerApi

        providers.provider_register("scheduler", SchedulerApi)
