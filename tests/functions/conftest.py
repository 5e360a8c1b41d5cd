"""Functions tests: real boto3 clients signed with a learner's real key against the live server, real environments."""
from __future__ import annotations

import io
import zipfile

import boto3
import pytest
from botocore.config import Config
from django.conf import settings

from sandbox.awsapi import identity
from sandbox.functions import reaper
from sandbox.functions.models import ExecutionEnvironment
from sandbox.functions.records import records_flush


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


HELLO = """
import json, os
print("module loaded")

def handler(event, context):
    print("hello", json.dumps(event))
    return {"greeting": "Hello, " + event.get("name", "world"), "request_id": context.aws_request_id,
            "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
"""


@pytest.fixture(scope="session")
def runtime_image(docker_engine):
    image = settings.SANDCLOUD_FUNCTIONS["RUNTIME_IMAGE"]
    if not docker_engine.has_image(image):
        pytest.fail(f"image {image} is missing: run `python manage.py sandbox images` (make test does)")
    return image


@pytest.fixture
def aws(live_server, transactional_db, runtime_image, tmp_path, settings):
    """make(user, service) → a boto3 client for that learner; every environment made is removed afterwards."""
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "CODE_DIR": str(tmp_path / "code")}
    keys = {}

    def make(user, service="lambda", **config):
        if user.pk not in keys:
            keys[user.pk] = identity.access_key_create(user=user)
        key, secret = keys[user.pk]
        return boto3.client(service, endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                            aws_access_key_id=key.access_key_id, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}, read_timeout=120, **config))

    yield make
    records_flush()
    reaper.environments_remove(rows=list(ExecutionEnvironment.objects.all()))


def role_of(user) -> str:
    return f"arn:aws:iam::{identity.aws_account_for(user=user).account_id}:role/lab"


def create(client, user, name="hello", files=None, **kwargs):
    kwargs.setdefault("Runtime", "python3.11")
    kwargs.setdefault("Handler", "app.handler")
    return client.create_function(FunctionName=name, Role=role_of(user),
                                  Code={"ZipFile": zip_of(files or {"app.py": HELLO})}, **kwargs)
