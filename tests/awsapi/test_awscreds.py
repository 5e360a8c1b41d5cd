"""`manage.py awscreds <username>` prints export lines whose key really signs requests to the learner's account."""
from __future__ import annotations

import io
import shlex

import pytest
from django.core.management import CommandError, call_command

from sandbox.awsapi import identity
from sandbox.awsapi.models import AccessKey
from sandbox.awsapi.sigv4 import request_authenticate

from .signing import ecs_call

pytestmark = pytest.mark.django_db


def awscreds(username: str) -> dict[str, str]:
    out = io.StringIO()
    call_command("awscreds", username, stdout=out)
    exported = {}
    for line in out.getvalue().splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        exported[name] = value
    return exported


def test_it_creates_a_key_for_a_learner_with_none_and_the_key_works(learner):
    exported = awscreds("ada")

    assert set(exported) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}
    assert exported["AWS_DEFAULT_REGION"] == "us-east-1"
    assert exported["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8000/aws"
    key = request_authenticate(**ecs_call(access_key_id=exported["AWS_ACCESS_KEY_ID"],
                                          secret=exported["AWS_SECRET_ACCESS_KEY"]), protocol="json")
    assert key.account.user == learner


def test_it_reuses_the_learners_active_key_instead_of_making_more(learner):
    first = awscreds("ada")
    second = awscreds("ADA")

    assert first == second
    assert AccessKey.objects.filter(account__user=learner).count() == 1


def test_a_revoked_key_is_replaced(learner):
    first = awscreds("ada")
    identity.access_key_revoke(user=learner, access_key_id=first["AWS_ACCESS_KEY_ID"])

    second = awscreds("ada")

    assert second["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]


def test_region_and_endpoint_come_from_settings(learner, settings):
    settings.SANDCLOUD_AWS_REGION = "eu-west-1"
    settings.SANDCLOUD_AWS_ENDPOINT_URL = "http://10.224.0.1:8000/aws"

    exported = awscreds("ada")

    assert (exported["AWS_DEFAULT_REGION"], exported["AWS_ENDPOINT_URL"]) == ("eu-west-1", "http://10.224.0.1:8000/aws")


def test_an_unknown_user_is_an_error():
    with pytest.raises(CommandError, match="No user is called 'nobody'"):
        call_command("awscreds", "nobody", stdout=io.StringIO())
