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
        self._forget_on_change(services)
        self._clean_up_with_account(services)
        try:
            from sandbox.scheduler.targets import target_register
        except ImportError:  # the scheduler app is optional
            pass
        else:
            target_register("lambda", services.function_invoke_scheduled)
        sandboxes.memory_commitment_register(environments.committed_mb)

    @staticmethod
    def _forget_on_change(services) -> None:
        """Any saved or deleted function, version or alias bumps its account's functions epoch, so every process's
        cached versions and reserved totals are read again (services.functions_changed)."""
        from django.db.models.signals import post_delete, post_save

        from .models import Alias, Function, FunctionVersion

        def account_of(instance) -> int:
            return instance.account_id if isinstance(instance, Function) else instance.function.account_id

        def changed(sender, instance, **_):
            try:
                services.functions_changed(account_of(instance))
            except Function.DoesNotExist:
                pass

        for model in (Function, FunctionVersion, Alias):
            post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"functions-epoch-save-{model.__name__}")
            post_delete.connect(changed, sender=model, weak=False,
                                dispatch_uid=f"functions-epoch-delete-{model.__name__}")

    @staticmethod
    def _clean_up_with_account(services) -> None:
        """A closed AWS account takes its functions' rows with it (CASCADE); their containers and unpacked code go
        once that commits."""
        from django.db import transaction
        from django.db.models.signals import pre_delete

        from sandbox.awsapi.models import AwsAccount

        from . import code, reaper
        from .models import ExecutionEnvironment, FunctionVersion

        def closing(sender, instance, **_):
            rows = list(ExecutionEnvironment.objects.filter(version__function__account=instance))
            keys = set(FunctionVersion.objects.filter(function__account=instance).values_list("code_key", flat=True))

            def clean() -> None:
                reaper.environments_remove(rows=rows)
                for key in keys:
                    code.code_remove(key)
            transaction.on_commit(clean)

        pre_delete.connect(closing, sender=AwsAccount, weak=False, dispatch_uid="functions-account-closing")
