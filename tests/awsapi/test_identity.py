"""Accounts and access keys: ids shaped like AWS's, two active keys at most, secrets encrypted, ARNs owned."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings

from sandbox.awsapi import identity
from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.models import AccessKey, AwsAccount
from sandbox.awsapi.sigv4 import request_authenticate

from .signing import ecs_call

pytestmark = pytest.mark.django_db


def test_a_learner_gets_one_twelve_digit_account_that_stays_theirs(learner):
    account = identity.aws_account_for(user=learner)

    assert re.fullmatch(r"[1-9][0-9]{11}", account.account_id)
    assert identity.aws_account_for(user=learner).pk == account.pk
    assert AwsAccount.objects.filter(user=learner).count() == 1


def test_account_ids_are_random_not_sequential(django_user_model):
    ids = [int(identity.aws_account_for(user=django_user_model.objects.create_user(f"u{n}")).account_id)
           for n in range(6)]

    assert len(set(ids)) == 6
    assert not all(later - earlier == 1 for earlier, later in zip(ids, ids[1:]))


def test_a_new_key_looks_like_an_aws_key_and_its_secret_is_returned_once(learner):
    key, secret = identity.access_key_create(user=learner)

    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert key.status == AccessKey.Status.ACTIVE
    assert key.account.user == learner


def test_the_secret_is_encrypted_at_rest(learner):
    key, secret = identity.access_key_create(user=learner)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AccessKey._meta.db_table} WHERE id = %s", [key.pk])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert secret not in row
    assert identity.access_key_secret(access_key=AccessKey.objects.get(pk=key.pk)) == secret


def test_a_third_active_key_is_refused_as_iam_refuses_it(learner):
    identity.access_key_create(user=learner)
    identity.access_key_create(user=learner)

    with pytest.raises(identity.AccessKeyLimitExceeded) as caught:
        identity.access_key_create(user=learner)

    assert (caught.value.code, caught.value.message) == ("LimitExceeded",
                                                         "Cannot exceed quota for AccessKeysPerUser: 2")
    assert AccessKey.objects.filter(account__user=learner).count() == 2


def test_revoking_a_key_makes_room_for_a_new_one_and_keeps_the_old_one_listed(learner):
    first, _ = identity.access_key_create(user=learner)
    identity.access_key_create(user=learner)

    revoked = identity.access_key_revoke(user=learner, access_key_id=first.access_key_id)
    identity.access_key_create(user=learner)

    assert revoked.status == AccessKey.Status.INACTIVE and revoked.revoked is not None
    listed = list(identity.access_keys_for(user=learner))
    assert len(listed) == 3 and first.access_key_id in {key.access_key_id for key in listed}
    assert identity.access_key_for_signing(access_key_id=first.access_key_id) is None


def test_a_learner_cannot_revoke_or_list_another_learners_key(learner, other_learner):
    theirs, _ = identity.access_key_create(user=other_learner)

    with pytest.raises(identity.AccessKeyNotFound) as caught:
        identity.access_key_revoke(user=learner, access_key_id=theirs.access_key_id)

    assert caught.value.code == "NoSuchEntity"
    assert AccessKey.objects.get(pk=theirs.pk).status == AccessKey.Status.ACTIVE
    assert list(identity.access_keys_for(user=learner)) == []


def test_a_key_reaches_only_its_owners_account(learner, other_learner):
    # Given learner A's key, and an ARN in learner B's account
    key_a, secret_a = identity.access_key_create(user=learner)
    account_b = identity.aws_account_for(user=other_learner)
    arn_b = identity.arn_for(account=account_b, service="lambda", region="us-east-1", resource="function:hello")

    # When A signs a request, it is A's account that is authenticated
    authenticated = request_authenticate(**ecs_call(access_key_id=key_a.access_key_id, secret=secret_a),
                                         protocol="json")
    assert authenticated.account.account_id != account_b.account_id

    # Then naming B's resource with A's key is refused in AWS's words
    with pytest.raises(AwsError) as caught:
        identity.arn_check(account=authenticated.account, arn=arn_b, action="lambda:GetFunction")
    assert (caught.value.code, caught.value.status) == ("AccessDeniedException", 403)
    assert caught.value.message == (f"User: arn:aws:iam::{authenticated.account.account_id}:user/ada is not "
                                    f"authorized to perform: lambda:GetFunction on resource: {arn_b} because no "
                                    "resource-based policy allows the lambda:GetFunction action")


def test_an_arn_in_the_learners_own_account_or_in_none_passes(learner):
    account = identity.aws_account_for(user=learner)
    own = f"arn:aws:iam::{account.account_id}:role/lab"

    assert identity.arn_check(account=account, arn=own).resource == "role/lab"
    assert identity.arn_check(account=account, arn="arn:aws:iam::aws:policy/ReadOnlyAccess") is not None
    assert identity.arn_check(account=account, arn="arn:aws:s3:::bucket/key").account_id == ""
    assert identity.arn_check(account=account, arn="not an arn") is None


def test_a_query_service_can_say_access_denied_its_own_way(learner, other_learner):
    account = identity.aws_account_for(user=learner)
    other = identity.aws_account_for(user=other_learner)

    with pytest.raises(AwsError) as caught:
        identity.arn_check(account=account, arn=f"arn:aws:elasticloadbalancing:us-east-1:{other.account_id}:"
                                                "loadbalancer/app/web/50dc6c495c0c9188", code="AccessDenied")

    assert caught.value.code == "AccessDenied"


def test_secrets_still_decrypt_after_the_site_key_is_rotated_with_a_fallback(learner, settings):
    key, secret = identity.access_key_create(user=learner)
    old = settings.SECRET_KEY

    with override_settings(SECRET_KEY="a new site key", SECRET_KEY_FALLBACKS=[old]):
        assert identity.access_key_secret(access_key=key) == secret
    with override_settings(SANDCLOUD_AWS_KEY_ENCRYPTION_KEY="a dedicated key"):
        assert identity.access_key_secret(access_key=key) == secret
        newer, newer_secret = identity.access_key_create(user=learner)
    with override_settings(SECRET_KEY="a new site key", SECRET_KEY_FALLBACKS=[]):
        assert identity.access_key_secret(access_key=key) is None  # unusable, so refused like an unknown key
        assert identity.access_key_secret(access_key=newer) is None
    with override_settings(SANDCLOUD_AWS_KEY_ENCRYPTION_KEY="a dedicated key", SECRET_KEY="a new site key"):
        assert identity.access_key_secret(access_key=newer) == newer_secret


def test_a_key_the_site_can_no_longer_decrypt_is_refused_as_unknown(learner):
    key, secret = identity.access_key_create(user=learner)

    with override_settings(SECRET_KEY="a new site key", SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(AwsError) as caught:
            request_authenticate(**ecs_call(access_key_id=key.access_key_id, secret=secret), protocol="json")

    assert caught.value.code == "UnrecognizedClientException"


def test_a_deleted_learner_takes_their_account_and_keys_along(learner):
    key, _ = identity.access_key_create(user=learner)

    learner.delete()

    assert not AccessKey.objects.filter(pk=key.pk).exists()
    assert not AwsAccount.objects.exists()
