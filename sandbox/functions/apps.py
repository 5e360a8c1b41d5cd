"""Lambda for every learner: functions, their execution environments and the Lambda API."""
from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "sandbox.functions"
    label = "functions"
    verbose_name = "Lambda functions"

    def ready(self):
        from sandbox import services as sandboxes
        from sandbox.awsapi.providers import provider_register

        from . import environments, services
        from .api import FunctionsApi

        provider_register("lambda", FunctionsApi)
        try:
            from sandbox.scheduler.targets import target_register
        except ImportError:  # the scheduler app is optional
            pass
        else:
            target_register("lambda", services.function_invoke_scheduled)
        sandboxes.memory_commitment_register(environments.committed_mb)
