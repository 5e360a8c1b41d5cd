"""A workstation uses its learner's AWS account as typed: the aws CLI in the image, the learner's key in ~/.aws, and
the edge listener (`manage.py awsedge`) through the fence's one hole, for cold starts and warm claims alike."""
from __future__ import annotations

import configparser
import json
import logging

import pytest
from django.conf import settings

from sandbox import services
from sandbox.awsapi.models import AccessKey
from sandbox.engine.images import AWSCLI_PLUGINS_CONFIG
from sandbox.events import events_recent
from sandbox.models import WarmContainer
from tests.aws_edge import aws_edge, aws_edge_listener  # noqa: F401 - fixtures
from tests.conftest import run_in

pytestmark = pytest.mark.docker

WHO_AM_I = "aws sts get-caller-identity"


def _aws_files(sandbox) -> tuple[configparser.ConfigParser, configparser.ConfigParser]:
    code, text = run_in(sandbox, "cat ~/.aws/credentials; echo '#--'; cat ~/.aws/config", timeout=10)
    assert code == 0, text
    credentials, config = configparser.ConfigParser(), configparser.ConfigParser()
    credentials.read_string(text.split("#--")[0])
    config.read_string(text.split("#--")[1])
    return credentials, config


def _key_in(sandbox) -> AccessKey:
    credentials, _ = _aws_files(sandbox)
    return AccessKey.objects.select_related("account__user").get(
        access_key_id=credentials["default"]["aws_access_key_id"])


def assert_answered_as(key: AccessKey, code: int, output: str) -> None:
    """The edge took the call as signed by `key`: GetCallerIdentity's answer names the key's account, or (while no
    provider serves STS) the edge refuses the operation, which it does only after the signature checked out. A missing
    key, an unreachable endpoint or a refused signature fails."""
    if code == 0:
        assert json.loads(output)["Account"] == key.account.account_id, output
    else:
        assert "Sandcloud does not support the operation GetCallerIdentity of service sts" in output, output
    key.refresh_from_db()
    assert key.last_used is not None and key.last_used_service == "sts", "the edge did not authenticate this key"


def test_a_cold_workstation_calls_the_learners_account_with_nothing_configured(start_sandbox, learner, aws_edge,
                                                                             monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 0)
    sandbox = start_sandbox(learner)

    _, variables = run_in(sandbox, "env | grep '^AWS_' || true", timeout=10)
    code, output = run_in(sandbox, WHO_AM_I, timeout=60)

    assert variables == ""  # nothing exported: the CLI finds everything in ~/.aws
    key = _key_in(sandbox)
    assert key.account.user == learner
    assert_answered_as(key, code, output)


def test_a_warm_workstation_gets_its_learners_account_once_claimed(start_sandbox, learner, aws_edge, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    warm = WarmContainer.objects.get()
    sandbox = start_sandbox(learner)  # the claim's attach (queued a second later) runs inline in tests

    code, output = run_in(sandbox, WHO_AM_I, timeout=60)

    assert sandbox.from_warm_pool and sandbox.container_id == warm.container_id
    key = _key_in(sandbox)
    assert key.account.user == learner
    assert_answered_as(key, code, output)


def test_another_learners_workstation_calls_another_account(start_sandbox, learner, other_learner, aws_edge):
    mine, theirs = start_sandbox(learner), start_sandbox(other_learner)

    answers = [run_in(sandbox, WHO_AM_I, timeout=60) for sandbox in (mine, theirs)]

    my_key, their_key = _key_in(mine), _key_in(theirs)
    assert their_key.account.user == other_learner
    assert their_key.account.account_id != my_key.account.account_id
    assert_answered_as(my_key, *answers[0])
    assert_answered_as(their_key, *answers[1])


def test_the_profile_points_at_the_edge_and_turns_on_the_images_cli_plugins(start_sandbox, learner, aws_edge):
    sandbox = start_sandbox(learner)

    _, config = _aws_files(sandbox)
    _, plugins = run_in(sandbox, f"cat {AWSCLI_PLUGINS_CONFIG} 2>/dev/null || true", timeout=10)
    _, modes = run_in(sandbox, "stat -c '%a %u' ~/.aws ~/.aws/credentials ~/.aws/config", timeout=10)
    code, version = run_in(sandbox, "aws --version", timeout=30)

    assert config["default"]["endpoint_url"] == f"http://aws.sandcloud.internal:{aws_edge.port}/aws"
    assert config["default"]["region"] == settings.SANDCLOUD_AWS_REGION
    if plugins.strip():  # the image carries plugins (sandbox/logs' `aws logs tail`): the learner's CLI loads them
        image_plugins = configparser.ConfigParser()
        image_plugins.read_string(plugins)
        assert dict(config["plugins"]) == dict(image_plugins["plugins"])
        assert "cli_legacy_plugin_path" not in config["plugins"]  # v1 would try to import it and fail every command
    assert code == 0 and version.startswith("aws-cli/1."), version
    assert [line.split()[0] for line in modes.splitlines()] == ["700", "600", "600"]
    assert len({line.split()[1] for line in modes.splitlines()}) == 1  # the learner's own


def test_the_secret_reaches_neither_the_log_nor_the_event_stream(start_sandbox, learner, aws_edge, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox = start_sandbox(learner)

    credentials, _ = _aws_files(sandbox)
    secret = credentials["default"]["aws_secret_access_key"]
    events = json.dumps(events_recent(sandbox_id=sandbox.pk))

    assert len(secret) == 40
    assert not [record for record in caplog.records if secret in record.getMessage()]
    assert secret not in events
    assert "is set up in ~/.aws" in events  # the learner was told, without the secret
