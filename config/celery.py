"""The Celery application: sandbox provisioning, teardown and the reaper run here."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sandcloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
