"""The access keys page: a learner lists, creates (the secret shown once) and revokes their own keys."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from sandbox.awsapi import identity
from sandbox.awsapi.models import AccessKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, learner):
    client.force_login(learner)
    return client


def test_the_page_asks_a_visitor_to_sign_in(client):
    response = client.get(reverse("aws-keys"))

    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_a_new_learner_sees_their_account_and_no_keys(signed_in, learner):
    response = signed_in.get(reverse("aws-keys"))

    assert response.status_code == 200
    page = response.content.decode()
    assert identity.aws_account_for(user=learner).account_id in page
    assert "You have no access keys yet." in page
    assert 'href="/aws-keys/"' in page  # the navigation bar links here


def test_creating_a_key_shows_its_secret_once_with_export_lines(signed_in, learner, settings):
    settings.SANDCLOUD_AWS_ENDPOINT_URL = "http://sandcloud.example:8000/aws"

    response = signed_in.post(reverse("aws-key-create"))

    page = response.content.decode()
    key = AccessKey.objects.get(account__user=learner)
    secret = identity.access_key_secret(access_key=key)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert f"export AWS_ACCESS_KEY_ID={key.access_key_id}" in page
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in page
    assert "export AWS_DEFAULT_REGION=us-east-1" in page
    assert "export AWS_ENDPOINT_URL=http://sandcloud.example:8000/aws" in page
    assert "only time Sandcloud shows it" in page
    # and never again
    again = signed_in.get(reverse("aws-keys")).content.decode()
    assert key.access_key_id in again and secret not in again


def test_the_list_shows_status_created_and_last_use(signed_in, learner):
    used, _ = identity.access_key_create(user=learner)
    identity.access_key_mark_used(access_key=used, service="lambda", region="us-east-1")
    unused, _ = identity.access_key_create(user=learner)
    identity.access_key_revoke(user=learner, access_key_id=unused.access_key_id)

    page = signed_in.get(reverse("aws-keys")).content.decode()

    rows = {key_id: row for row in re.findall(r"<tr.*?</tr>", page, re.S)
            for key_id in (used.access_key_id, unused.access_key_id) if key_id in row}
    assert "Active" in rows[used.access_key_id] and "by lambda in us-east-1" in rows[used.access_key_id]
    assert "Revoked" in rows[unused.access_key_id] and "Never" in rows[unused.access_key_id]


def test_revoking_a_key_from_the_page_stops_it(signed_in, learner):
    key, _ = identity.access_key_create(user=learner)

    response = signed_in.post(reverse("aws-key-revoke", args=[key.access_key_id]), follow=True)

    key.refresh_from_db()
    assert key.status == AccessKey.Status.INACTIVE
    assert f"Key {key.access_key_id} is revoked" in response.content.decode()


def test_another_learners_key_cannot_be_revoked_from_the_page(signed_in, other_learner):
    theirs, _ = identity.access_key_create(user=other_learner)

    response = signed_in.post(reverse("aws-key-revoke", args=[theirs.access_key_id]), follow=True)

    assert AccessKey.objects.get(pk=theirs.pk).status == AccessKey.Status.ACTIVE
    assert "You have no access key with that id." in response.content.decode()


def test_a_third_key_is_explained_in_a_plain_sentence(signed_in, learner):
    identity.access_key_create(user=learner)
    identity.access_key_create(user=learner)

    page = signed_in.get(reverse("aws-keys")).content.decode()
    response = signed_in.post(reverse("aws-key-create"), follow=True)

    assert "Revoke one you no longer use to create another." in page
    assert "Revoke one you no longer use, then create a new one." in response.content.decode()
    assert AccessKey.objects.filter(account__user=learner).count() == 2


def test_creating_and_revoking_need_the_csrf_token(learner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    key, _ = identity.access_key_create(user=learner)

    assert client.post(reverse("aws-key-create")).status_code == 403
    assert client.post(reverse("aws-key-revoke", args=[key.access_key_id])).status_code == 403
    assert AccessKey.objects.filter(account__user=learner).count() == 1
    assert AccessKey.objects.get(pk=key.pk).is_active


def test_the_page_runs_no_inline_script(signed_in):
    page = signed_in.post(reverse("aws-key-create")).content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert " on" + "click=" not in page
