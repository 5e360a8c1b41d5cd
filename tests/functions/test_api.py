"""The Lambda API as boto3 and the aws CLI use it: configuration, versions, aliases, concurrency, who sees what."""
from __future__ import annotations

import base64
import io
import json
import stat
import zipfile

import pytest
from botocore.exceptions import ClientError

from sandbox.awsapi import identity
from sandbox.functions.models import AsyncEvent, ExecutionEnvironment

from .conftest import HELLO, create, zip_of

pytestmark = pytest.mark.docker


def error_of(caught) -> tuple[str, str, int]:
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", ""), caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_list_functions_pages_with_next_marker(aws, learner):
    client = aws(learner)
    for name in ("alpha", "beta", "gamma"):
        create(client, learner, name=name)

    first = client.list_functions(MaxItems=2)
    rest = client.list_functions(Marker=first["NextMarker"])

    assert [f["FunctionName"] for f in first["Functions"]] == ["alpha", "beta"]
    assert [f["FunctionName"] for f in rest["Functions"]] == ["gamma"] and "NextMarker" not in rest


def test_another_learner_neither_sees_nor_invokes_nor_deletes_a_function(aws, learner, other_learner):
    mine = aws(learner)
    arn = create(mine, learner)["FunctionArn"]
    theirs = aws(other_learner)

    assert theirs.list_functions()["Functions"] == []
    with pytest.raises(ClientError) as by_name:
        theirs.invoke(FunctionName="hello", Payload=b"{}")
    with pytest.raises(ClientError) as by_arn:
        theirs.invoke(FunctionName=arn, Payload=b"{}")
    with pytest.raises(ClientError) as delete:
        theirs.delete_function(FunctionName=arn)

    assert error_of(by_name)[0] == "ResourceNotFoundException"
    assert error_of(by_arn)[0] == error_of(delete)[0] == "AccessDeniedException"
    assert mine.get_function(FunctionName="hello")["Configuration"]["FunctionArn"] == arn


def test_a_role_in_another_account_is_refused_and_nothing_is_created(aws, learner, other_learner):
    client = aws(learner)
    other = identity.aws_account_for(user=other_learner).account_id
    with pytest.raises(ClientError) as caught:
        client.create_function(FunctionName="x", Runtime="python3.11", Handler="app.handler",
                               Role=f"arn:aws:iam::{other}:role/lab", Code={"ZipFile": zip_of({"app.py": HELLO})})
    assert error_of(caught)[0] == "AccessDeniedException"
    assert client.list_functions()["Functions"] == []


def test_memory_below_the_minimum_is_refused_in_aws_words(aws, learner):
    with pytest.raises(ClientError) as caught:
        create(aws(learner, parameter_validation=False), learner, MemorySize=64)
    assert error_of(caught)[:2] == ("ValidationException", "1 validation error detected: Value '64' at 'memorySize' "
                                    "failed to satisfy constraint: Member must have value greater than or equal to 128")


def test_raising_memory_replaces_the_environment_and_the_report_shows_it(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.invoke(FunctionName="hello", Payload=b"{}")
    old = set(ExecutionEnvironment.objects.values_list("container_id", flat=True))

    client.update_function_configuration(FunctionName="hello", MemorySize=512)
    answer = client.invoke(FunctionName="hello", Payload=b"{}", LogType="Tail")

    log = base64.b64decode(answer["LogResult"]).decode()
    assert "Memory Size: 512 MB" in log and "Init Duration" in log
    assert json.loads(answer["Payload"].read())["memory"] == "512"
    assert not old & set(ExecutionEnvironment.objects.values_list("container_id", flat=True))


def test_an_alias_routes_between_two_published_versions(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    return 'one'\n"})
    assert client.publish_version(FunctionName="hello")["Version"] == "1"
    client.update_function_code(FunctionName="hello", ZipFile=zip_of({"app.py": "def handler(e, c):\n"
                                                                                  "    return 'two'\n"}))
    assert client.publish_version(FunctionName="hello")["Version"] == "2"
    client.create_alias(FunctionName="hello", Name="live", FunctionVersion="1",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})

    seen = {client.invoke(FunctionName="hello", Qualifier="live")["Payload"].read().decode() for _ in range(16)}

    assert seen == {"\"one\"", "\"two\""}, seen
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName="hello")["Versions"]] == \
        ["$LATEST", "1", "2"]
    assert client.get_alias(FunctionName="hello", Name="live")["RoutingConfig"] == \
        {"AdditionalVersionWeights": {"2": 0.5}}


def test_reserved_concurrency_of_zero_throttles_with_429(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.put_function_concurrency(FunctionName="hello", ReservedConcurrentExecutions=0)

    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="hello", Payload=b"{}")

    assert error_of(caught) == ("TooManyRequestsException", "Rate Exceeded.", 429)
    client.delete_function_concurrency(FunctionName="hello")
    assert client.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200


def test_dry_run_and_event_answer_204_and_202_and_the_event_runs(aws, learner):
    client = aws(learner)
    create(client, learner)

    assert client.invoke(FunctionName="hello", InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName="hello", InvocationType="Event", Payload=b'{"name": "Ev"}')["StatusCode"] == 202

    assert AsyncEvent.objects.get().state == AsyncEvent.State.SUCCEEDED  # Celery runs tasks inline in these tests


def test_a_payload_over_six_megabytes_is_refused_with_413(aws, learner):
    client = aws(learner)
    create(client, learner)
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="hello", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert error_of(caught)[0] == "RequestTooLargeException" and error_of(caught)[2] == 413


def test_a_payload_that_is_not_json_is_refused(aws, learner):
    client = aws(learner)
    create(client, learner)
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="hello", Payload=b"not json")
    assert error_of(caught)[0] == "InvalidRequestContentException"


def _zip_with(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize("entries, expected", [
    ([(zipfile.ZipInfo("../../escape.py"), b"x")], "points outside"),
    ([(zipfile.ZipInfo("/etc/cron.d/x"), b"x")], "points outside"),
    ([_symlink("app.py", "/etc/shadow")], "symbolic link"),
    ([(zipfile.ZipInfo("a\x01b.py"), b"x")], "control characters"),
])
def test_hostile_zips_are_refused_and_nothing_is_created(aws, learner, entries, expected, tmp_path):
    client = aws(learner)
    with pytest.raises(ClientError) as caught:
        client.create_function(FunctionName="x", Runtime="python3.11", Handler="app.handler",
                               Role=f"arn:aws:iam::{identity.aws_account_for(user=learner).account_id}:role/lab",
                               Code={"ZipFile": _zip_with(entries)})
    code, message, status = error_of(caught)
    assert code == "InvalidParameterValueException" and expected in message and status == 400
    assert client.list_functions()["Functions"] == []


def test_a_zip_bomb_is_refused_by_the_bytes_that_come_out(aws, learner):
    from sandbox.functions import code as code_store

    code_store.MAX_UNZIPPED_BYTES, saved = 4 * 1024 * 1024, code_store.MAX_UNZIPPED_BYTES
    try:
        bomb = zip_of({"app.py": HELLO, "padding.bin": b"\0" * (8 * 1024 * 1024)})
        with pytest.raises(ClientError) as caught:
            aws(learner).create_function(
                FunctionName="bomb", Runtime="python3.11", Handler="app.handler",
                Role=f"arn:aws:iam::{identity.aws_account_for(user=learner).account_id}:role/lab",
                Code={"ZipFile": bomb})
    finally:
        code_store.MAX_UNZIPPED_BYTES = saved
    assert error_of(caught)[1].startswith("Unzipped size must be smaller than")


def test_a_schedule_fires_its_function_for_real(aws, learner):
    from django.utils import timezone

    from sandbox.scheduler import services as scheduler

    client = aws(learner)
    arn = create(client, learner)["FunctionArn"]
    account = identity.aws_account_for(user=learner)
    schedule = scheduler.schedule_create(account=account, name="every-minute", expression="rate(1 minute)",
                                         target_arn=arn, target_input='{"name": "Cron"}')

    scheduler.schedules_dispatch(now=timezone.now() + __import__("datetime").timedelta(minutes=2))

    schedule.refresh_from_db()
    assert schedule.last_result == "Invoked"
    assert AsyncEvent.objects.get().state == AsyncEvent.State.SUCCEEDED


def test_concurrent_invocations_past_the_learners_limit_are_throttled_and_the_rest_run(aws, learner, settings):
    from concurrent.futures import ThreadPoolExecutor

    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "CONCURRENCY_PER_LEARNER": 3}
    client = aws(learner)
    create(client, learner, files={"app.py": "import time\ndef handler(e, c):\n    time.sleep(3)\n    return 'ok'\n"},
           Timeout=20)

    def call(_):
        try:
            return json.loads(client.invoke(FunctionName="hello", Payload=b"{}")["Payload"].read())
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(call, range(6)))

    assert outcomes == ["TooManyRequestsException"] * 3 + ["ok"] * 3


def test_an_event_whose_function_fails_is_retried_twice_then_kept_as_a_failed_event(aws, learner, settings):
    from sandbox.functions.models import Invocation
    from sandbox.functions.records import records_flush

    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "ASYNC_RETRY_DELAYS": [0, 0]}
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    raise RuntimeError('always')\n"})

    assert client.invoke(FunctionName="hello", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202

    event = AsyncEvent.objects.get()
    records_flush()
    assert (event.state, event.attempts) == (AsyncEvent.State.FAILED, 3)
    assert "always" in event.error
    assert Invocation.objects.filter(invocation_type="Event", status="Error").count() == 3


def test_provisioned_concurrency_keeps_initialised_environments_that_answer_without_an_init(aws, learner):
    client = aws(learner)
    create(client, learner)
    client.publish_version(FunctionName="hello")
    client.create_alias(FunctionName="hello", Name="live", FunctionVersion="1")

    client.put_provisioned_concurrency_config(FunctionName="hello", Qualifier="live",
                                              ProvisionedConcurrentExecutions=2)

    status = client.get_provisioned_concurrency_config(FunctionName="hello", Qualifier="live")
    assert (status["Status"], status["AvailableProvisionedConcurrentExecutions"]) == ("READY", 2)
    assert ExecutionEnvironment.objects.filter(provisioned=True).count() == 2
    answer = client.invoke(FunctionName="hello", Qualifier="live", Payload=b"{}", LogType="Tail")
    log = base64.b64decode(answer["LogResult"]).decode()
    assert "Version: 1" in log and "Init Duration" not in log
    with pytest.raises(ClientError) as latest:
        client.put_provisioned_concurrency_config(FunctionName="hello", Qualifier="$LATEST",
                                                  ProvisionedConcurrentExecutions=1)
    assert error_of(latest)[0] == "InvalidParameterValueException"


def test_a_zip_with_names_that_are_not_utf8_unpacks_as_its_legacy_encoding(aws, learner):
    entries = [(zipfile.ZipInfo("app.py"), HELLO.encode()), (zipfile.ZipInfo("cafX.txt"), b"x")]
    # The byte 0xE9 is not UTF-8 on its own, and the UTF-8 flag (0x800) stays unset: the name is CP437, as old zip
    # tools write it, in both the local header and the central directory.
    legacy = _zip_with(entries).replace(b"cafX.txt", b"caf\xe9.txt")
    client = aws(learner)
    client.create_function(FunctionName="legacy", Runtime="python3.11", Handler="app.handler",
                           Role=f"arn:aws:iam::{identity.aws_account_for(user=learner).account_id}:role/lab",
                           Code={"ZipFile": legacy})

    assert client.invoke(FunctionName="legacy", Payload=b"{}")["StatusCode"] == 200


def test_a_timeout_above_fifteen_minutes_is_refused_though_the_model_allows_it(aws, learner):
    with pytest.raises(ClientError) as caught:
        create(aws(learner, parameter_validation=False), learner, Timeout=901)
    assert error_of(caught)[0] == "InvalidParameterValueException" and "900" in error_of(caught)[1]


def test_a_learner_past_their_environment_memory_is_throttled_and_another_learner_is_not(aws, learner,
                                                                                       other_learner, settings):
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "MEMORY_MB_PER_LEARNER": 256}
    client = aws(learner)
    create(client, learner, name="big", MemorySize=256)
    create(client, learner, name="more")
    client.invoke(FunctionName="big", Payload=b"{}")

    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="more", Payload=b"{}")

    assert error_of(caught)[0] == "TooManyRequestsException" and "256 MB" in error_of(caught)[1]
    bystander = aws(other_learner)
    create(bystander, other_learner)
    assert bystander.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200


def test_event_invocations_past_the_queued_limit_are_throttled_and_nothing_is_stored(aws, learner, settings):
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "ASYNC_QUEUED_PER_LEARNER": 0}
    client = aws(learner)
    create(client, learner)

    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="hello", InvocationType="Event", Payload=b"{}")

    assert error_of(caught)[:2] == ("TooManyRequestsException", "Rate Exceeded. (Sandcloud: 0 of your asynchronous "
                                    "invocations are still waiting to run.)")
    assert not AsyncEvent.objects.exists()
