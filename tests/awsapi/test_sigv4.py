"""SigV4 verification against requests botocore signed, and AWS's answers when they are not signed well."""
from __future__ import annotations

import datetime as dt
import logging

import boto3
import pytest
from django.test import RequestFactory

from sandbox.awsapi import identity
from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.sigv4 import request_authenticate, request_credential_scope, request_raw_path

from .signing import ENDPOINT, ecs_call, signed

pytestmark = pytest.mark.django_db

SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                      "Secret Access Key and signing method. Consult the service documentation for details.")
NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def key(learner):
    access_key, secret = identity.access_key_create(user=learner)
    return access_key, secret


def authenticate(request: dict, protocol: str = "json", now: dt.datetime | None = None):
    return request_authenticate(**request, protocol=protocol, now=now)


def refused(request: dict, protocol: str = "json", now: dt.datetime | None = None) -> AwsError:
    with pytest.raises(AwsError) as caught:
        authenticate(request, protocol, now)
    return caught.value


def test_a_request_signed_by_botocore_is_the_learners_key(key, learner):
    access_key, secret = key

    authenticated = authenticate(ecs_call(access_key_id=access_key.access_key_id, secret=secret))

    assert authenticated.pk == access_key.pk
    assert authenticated.account.user == learner
    assert authenticated.account.account_id == identity.aws_account_for(user=learner).account_id


def test_a_real_boto3_lambda_call_with_an_arn_in_its_path_verifies_through_the_raw_path(key, learner):
    # Given the request boto3 really sends for `get-function --function-name <arn>` (its path is percent-encoded)
    access_key, secret = key
    captured = {}

    class Sent(Exception):
        pass

    def capture(request, **_):
        captured["request"] = request
        raise Sent

    client = boto3.client("lambda", region_name="eu-west-1", endpoint_url=ENDPOINT,
                          aws_access_key_id=access_key.access_key_id, aws_secret_access_key=secret)
    client.meta.events.register("before-send", capture)
    arn = f"arn:aws:lambda:eu-west-1:{access_key.account.account_id}:function:hello"
    with pytest.raises(Sent):
        client.get_function(FunctionName=arn, Qualifier="$LATEST")
    sent = captured["request"]
    path, _, query = sent.url.removeprefix("http://127.0.0.1:8000").partition("?")
    assert "%3A" in path
    # When Django hands the edge view that request (the test client decodes the path, as some servers do)
    django_request = RequestFactory().get(path, QUERY_STRING=query)
    headers = {name: value.decode() for name, value in sent.headers.items()} | {"Host": "127.0.0.1:8000"}

    authenticated = request_authenticate(method="GET", path=request_raw_path(django_request), query_string=query,
                                         headers=headers, body=b"", protocol="rest-json")

    assert authenticated.pk == access_key.pk
    scope = request_credential_scope(headers=headers)
    assert (scope.service, scope.region) == ("lambda", "eu-west-1")


def test_a_tampered_body_is_refused(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret, body=b'{"maxResults": 1}')
    request["body"] = b'{"maxResults": 99}'

    error = refused(request)

    assert (error.code, error.status, error.message) == ("InvalidSignatureException", 403, SIGNATURE_MISMATCH)


def test_a_tampered_signed_header_is_refused(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret)
    request["headers"]["X-Amz-Target"] = "AmazonEC2ContainerServiceV20141113.DeleteCluster"

    assert refused(request).code == "InvalidSignatureException"


def test_a_changed_unsigned_header_does_not_matter(key):
    # botocore never signs User-Agent, and proxies add headers of their own
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret)
    request["headers"]["User-Agent"] = "something else"
    request["headers"]["X-Forwarded-For"] = "10.0.0.1"

    assert authenticate(request).pk == access_key.pk


def test_a_tampered_query_string_is_refused(key):
    access_key, secret = key
    request = signed(access_key_id=access_key.access_key_id, secret=secret, method="GET",
                     url=ENDPOINT + "/2015-03-31/functions/?MaxItems=5", service="lambda")
    request["query_string"] = "MaxItems=50"

    assert refused(request, "rest-json").code == "InvalidSignatureException"


@pytest.mark.parametrize("protocol, code, status", [("json", "InvalidSignatureException", 403),
                                                    ("query", "SignatureDoesNotMatch", 403),
                                                    ("ec2", "AuthFailure", 401)])
def test_a_wrong_secret_is_refused_in_the_protocols_words(key, protocol, code, status):
    access_key, secret = key
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    error = refused(ecs_call(access_key_id=access_key.access_key_id, secret=wrong), protocol)

    assert (error.code, error.status) == (code, status)


@pytest.mark.parametrize("protocol, code", [("json", "UnrecognizedClientException"),
                                            ("rest-json", "UnrecognizedClientException"),
                                            ("query", "InvalidClientTokenId")])
def test_a_revoked_key_is_refused_as_aws_refuses_a_deleted_one(key, learner, protocol, code):
    access_key, secret = key
    identity.access_key_revoke(user=learner, access_key_id=access_key.access_key_id)

    error = refused(ecs_call(access_key_id=access_key.access_key_id, secret=secret), protocol)

    assert (error.code, error.status) == (code, 403)
    assert error.message == "The security token included in the request is invalid."


def test_an_unknown_key_is_refused(key):
    _, secret = key

    error = refused(ecs_call(access_key_id="AKIAIOSFODNN7EXAMPLE", secret=secret))

    assert (error.code, error.status) == ("UnrecognizedClientException", 403)


def test_a_request_signed_16_minutes_ago_has_expired(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret, when=NOW - dt.timedelta(minutes=16))

    error = refused(request, now=NOW)

    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message == ("Signature expired: 20261201T114400Z is now earlier than 20261201T114500Z "
                             "(20261201T120000Z - 15 min.)")


def test_a_request_signed_16_minutes_ahead_is_not_yet_current(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret, when=NOW + dt.timedelta(minutes=16))

    error = refused(request, "query", now=NOW)

    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.message == ("Signature not yet current: 20261201T121600Z is still later than 20261201T121500Z "
                             "(20261201T120000Z + 15 min.)")


@pytest.mark.parametrize("minutes", [-14, 14])
def test_a_clock_within_15_minutes_is_accepted(key, minutes):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret, when=NOW + dt.timedelta(minutes=minutes))

    assert authenticate(request, now=NOW).pk == access_key.pk


@pytest.mark.parametrize("protocol, code, status, message", [
    ("rest-json", "MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
    ("query", "MissingAuthenticationToken", 403, "Request is missing Authentication Token"),
])
def test_an_unsigned_request_is_missing_its_token(protocol, code, status, message):
    request = {"method": "GET", "path": "/aws/2015-03-31/functions/", "query_string": "",
               "headers": {"Host": "127.0.0.1:8000"}, "body": b""}

    error = refused(request, protocol)

    assert (error.code, error.status, error.message) == (code, status, message)


def test_an_authorization_header_without_its_parts_is_incomplete():
    request = {"method": "POST", "path": "/aws/", "query_string": "", "body": b"{}",
               "headers": {"Host": "127.0.0.1:8000", "Authorization": "AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl"}}

    error = refused(request)

    assert (error.code, error.status) == ("IncompleteSignatureException", 400)
    assert error.message.startswith("Authorization header requires 'Credential' parameter. Authorization header "
                                    "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
                                    "parameter. Authorization header requires existence of either a 'X-Amz-Date' or "
                                    "a 'Date' header. Authorization=AWS ")


def test_a_malformed_credential_scope_is_incomplete(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret)
    request["headers"]["Authorization"] = request["headers"]["Authorization"].replace("/aws4_request", "")

    error = refused(request)

    assert error.code == "IncompleteSignatureException"
    assert error.message.startswith("Credential must have exactly 5 slash-delimited elements")


def test_a_presigned_url_verifies_until_it_expires(key):
    access_key, secret = key
    request = signed(access_key_id=access_key.access_key_id, secret=secret, method="GET", service="lambda",
                     url=ENDPOINT + "/2015-03-31/functions/?MaxItems=5", when=NOW, presign_expires=300)
    assert "X-Amz-Signature=" in request["query_string"] and "Authorization" not in request["headers"]

    assert authenticate(request, "rest-json", now=NOW + dt.timedelta(seconds=299)).pk == access_key.pk
    error = refused(request, "rest-json", now=NOW + dt.timedelta(seconds=301))
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message.startswith("Signature expired: 20261201T120000Z is now earlier than")


def test_a_content_hash_that_is_not_the_bodys_is_refused(key):
    # With x-amz-content-sha256 signed, botocore's canonical request trusts the header: the body must match it
    access_key, secret = key
    sha256_of_braces = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret, body=b"{}",
                       headers={"X-Amz-Content-SHA256": sha256_of_braces})
    assert authenticate(request).pk == access_key.pk
    request["body"] = b"[]"

    assert refused(request).code == "InvalidSignatureException"


def test_an_unsigned_payload_is_accepted(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret,
                       headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})

    assert authenticate(request).pk == access_key.pk


def test_a_streaming_payload_is_refused_as_not_supported(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret,
                       headers={"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})

    error = refused(request)

    assert (error.code, error.status) == ("NotImplemented", 501)
    assert "Sandcloud does not support" in error.message


def test_a_session_token_is_refused_because_sandcloud_issues_none(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret,
                       headers={"X-Amz-Security-Token": "FwoGZXIvYXdzEXAMPLE"})

    assert refused(request).code == "UnrecognizedClientException"


def test_a_signature_without_host_is_incomplete(key):
    access_key, secret = key
    request = ecs_call(access_key_id=access_key.access_key_id, secret=secret)
    request["headers"]["Authorization"] = request["headers"]["Authorization"].replace(";host;", ";")
    assert "host" not in request["headers"]["Authorization"].split("SignedHeaders=")[1].split(",")[0]

    error = refused(request)

    assert error.code == "IncompleteSignatureException"
    assert "'Host' or ':authority' must be a 'SignedHeader'" in error.message


def test_a_verified_request_records_when_and_where_the_key_was_last_used(key):
    access_key, secret = key

    authenticate(ecs_call(access_key_id=access_key.access_key_id, secret=secret, region="eu-central-1"))

    access_key.refresh_from_db()
    assert access_key.last_used is not None
    assert (access_key.last_used_service, access_key.last_used_region) == ("ecs", "eu-central-1")


def test_no_secret_reaches_the_log_on_success_or_failure(key, caplog):
    access_key, secret = key
    good = ecs_call(access_key_id=access_key.access_key_id, secret=secret)
    bad = ecs_call(access_key_id=access_key.access_key_id, secret=secret, body=b"[]")
    bad["body"] = b"{}"
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    authenticate(good)
    error = refused(bad)

    assert caplog.records, "the refusal should be logged"
    logged = caplog.text + " ".join(str(record.args) for record in caplog.records)
    assert access_key.access_key_id in logged
    assert secret not in logged
    assert secret not in repr(error) and secret not in error.message
