"""CloudWatch Logs through the edge endpoint: real boto3 clients signed with learners' real keys, against the live
server, answered as AWS answers; and another learner's key, which never reaches the first learner's logs."""
from __future__ import annotations

import re
import time

import pytest
from botocore.exceptions import ClientError

from sandbox.logs import services

from .conftest import error_of

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "/aws/lambda/hello"
NOT_FOUND_GROUP = ("ResourceNotFoundException", "The specified log group does not exist.")
NOT_FOUND_STREAM = ("ResourceNotFoundException", "The specified log stream does not exist.")
BAD_TOKEN = ("InvalidParameterException", "The specified nextToken is invalid.")


def now_ms() -> int:
    return int(time.time() * 1000)


def group_with_events(logs, events_by_stream: dict[str, list[tuple[int, str]]], group: str = GROUP) -> None:
    logs.create_log_group(logGroupName=group)
    for stream, events in events_by_stream.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if events:
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": m} for t, m in events])


def raised(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return error_of(caught)


# --- log groups ---------------------------------------------------------------------------------------------------

def test_a_new_group_is_described_as_aws_describes_it(logs, account):
    before = now_ms()
    logs.create_log_group(logGroupName=GROUP)

    (group,) = logs.describe_log_groups()["logGroups"]

    arn = f"arn:aws:logs:us-east-1:{account.account_id}:log-group:{GROUP}"
    assert group["logGroupName"] == GROUP
    assert group["arn"] == arn + ":*" and group["logGroupArn"] == arn
    assert before - 1000 <= group["creationTime"] <= now_ms()
    assert group["storedBytes"] == 0 and group["metricFilterCount"] == 0
    assert "retentionInDays" not in group


def test_a_group_that_exists_already_is_refused(logs):
    logs.create_log_group(logGroupName=GROUP)

    assert raised(logs.create_log_group, logGroupName=GROUP) == (
        "ResourceAlreadyExistsException", "The specified log group already exists")


def test_deleting_a_group_removes_it_and_its_events(logs):
    group_with_events(logs, {"s": [(now_ms(), "hello")]})

    logs.delete_log_group(logGroupName=GROUP)

    assert logs.describe_log_groups()["logGroups"] == []
    assert raised(logs.get_log_events, logGroupName=GROUP, logStreamName="s") == NOT_FOUND_GROUP


def test_deleting_a_missing_group_is_not_found(logs):
    assert raised(logs.delete_log_group, logGroupName=GROUP) == NOT_FOUND_GROUP


def test_stored_bytes_count_each_events_message_and_26_bytes(logs):
    group_with_events(logs, {"s": [(now_ms(), "abc"), (now_ms(), "défg")]})

    (group,) = logs.describe_log_groups()["logGroups"]

    assert group["storedBytes"] == (3 + 26) + (5 + 26)


def test_a_prefix_selects_groups_case_sensitively(logs):
    for name in ("/aws/lambda/hello2", "/aws/lambda/Hello", "/app/web"):
        logs.create_log_group(logGroupName=name)

    found = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/h")["logGroups"]

    assert [group["logGroupName"] for group in found] == ["/aws/lambda/hello2"]


def test_a_name_pattern_finds_groups_containing_it_and_answers_briefly(logs):
    for name in ("/aws/lambda/DataLogs", "/DataLogs", "/datalogs"):
        logs.create_log_group(logGroupName=name)

    found = logs.describe_log_groups(logGroupNamePattern="DataLogs")["logGroups"]

    assert [group["logGroupName"] for group in found] == ["/DataLogs", "/aws/lambda/DataLogs"]
    assert set(found[0]) == {"logGroupName", "creationTime", "arn"}


def test_groups_come_a_page_at_a_time_and_a_paginator_gets_them_all(logs):
    names = [f"/aws/lambda/fn{n}" for n in range(7)]
    for name in names:
        logs.create_log_group(logGroupName=name)

    first = logs.describe_log_groups(limit=3)
    everything = [group["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 3}) for group in page["logGroups"]]

    assert [group["logGroupName"] for group in first["logGroups"]] == names[:3] and first["nextToken"]
    assert everything == names


def test_a_made_up_token_is_refused(logs):
    assert raised(logs.describe_log_groups, nextToken="made-up") == BAD_TOKEN


def test_an_account_at_its_cap_of_groups_is_refused_another(logs, monkeypatch):
    monkeypatch.setattr(services, "LOG_GROUPS_PER_ACCOUNT", 2)
    logs.create_log_group(logGroupName="/one")
    logs.create_log_group(logGroupName="/two")

    assert raised(logs.create_log_group, logGroupName="/three") == (
        "LimitExceededException", "Resource limit exceeded.")


def test_a_kms_key_is_refused_with_a_sentence(logs):
    code, message = raised(logs.create_log_group, logGroupName=GROUP, kmsKeyId="arn:aws:kms:us-east-1:1:key/x")

    assert code == "InvalidParameterException" and "KMS" in message


# --- retention ----------------------------------------------------------------------------------------------------

def test_a_retention_policy_shows_on_the_group_until_it_is_deleted(logs):
    logs.create_log_group(logGroupName=GROUP)

    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=7)
    assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == 7

    logs.delete_retention_policy(logGroupName=GROUP)
    assert "retentionInDays" not in logs.describe_log_groups()["logGroups"][0]


def test_a_retention_aws_does_not_offer_is_refused_in_its_words(logs):
    logs.create_log_group(logGroupName=GROUP)

    code, message = raised(logs.put_retention_policy, logGroupName=GROUP, retentionInDays=2)

    assert code == "InvalidParameterException"
    assert message.startswith("1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60,")


def test_retention_of_a_missing_group_is_not_found(logs):
    assert raised(logs.put_retention_policy, logGroupName=GROUP, retentionInDays=7) == NOT_FOUND_GROUP
    assert raised(logs.delete_retention_policy, logGroupName=GROUP) == NOT_FOUND_GROUP


# --- log streams --------------------------------------------------------------------------------------------------

def test_a_stream_needs_its_group(logs):
    assert raised(logs.create_log_stream, logGroupName=GROUP, logStreamName="s") == NOT_FOUND_GROUP


def test_a_stream_that_exists_already_is_refused(logs):
    group_with_events(logs, {"s": []})

    assert raised(logs.create_log_stream, logGroupName=GROUP, logStreamName="s") == (
        "ResourceAlreadyExistsException", "The specified log stream already exists")


def test_a_stream_describes_its_first_and_last_events(logs, account):
    t = now_ms()
    group_with_events(logs, {"busy": [(t - 5000, "a"), (t - 1000, "b")], "quiet": []})

    busy, quiet = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]

    assert busy["logStreamName"] == "busy"
    assert (busy["firstEventTimestamp"], busy["lastEventTimestamp"]) == (t - 5000, t - 1000)
    assert t - 1000 <= busy["lastIngestionTime"] <= now_ms()
    assert busy["arn"] == f"arn:aws:logs:us-east-1:{account.account_id}:log-group:{GROUP}:log-stream:busy"
    assert quiet["logStreamName"] == "quiet" and "lastEventTimestamp" not in quiet


def test_streams_ordered_by_last_event_time_newest_first(logs):
    t = now_ms()
    group_with_events(logs, {"a": [(t - 3000, "x")], "b": [(t - 1000, "x")], "c": [(t - 2000, "x")], "d": []})

    streams = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True)

    assert [s["logStreamName"] for s in streams["logStreams"]] == ["b", "c", "a", "d"]


def test_ordering_by_last_event_time_takes_no_prefix(logs):
    group_with_events(logs, {"s": []})

    assert raised(logs.describe_log_streams, logGroupName=GROUP, orderBy="LastEventTime",
                  logStreamNamePrefix="s") == ("InvalidParameterException",
                                               "Cannot order by LastEventTime with a logStreamNamePrefix.")


def test_streams_by_prefix_come_a_page_at_a_time(logs):
    group_with_events(logs, {name: [] for name in ("web-3", "web-1", "worker", "web-2", "Web-0")})

    pages = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName=GROUP, logStreamNamePrefix="web-", PaginationConfig={"PageSize": 2}))

    assert [[s["logStreamName"] for s in page["logStreams"]] for page in pages] == [["web-1", "web-2"], ["web-3"]]


def test_streams_named_in_descending_order_page_backwards(logs):
    group_with_events(logs, {name: [] for name in ("a", "b", "c")})

    first = logs.describe_log_streams(logGroupName=GROUP, descending=True, limit=2)
    second = logs.describe_log_streams(logGroupName=GROUP, descending=True, limit=2, nextToken=first["nextToken"])

    assert [s["logStreamName"] for s in first["logStreams"] + second["logStreams"]] == ["c", "b", "a"]
    assert "nextToken" not in second


def test_a_deleted_stream_is_gone_and_deleting_it_again_is_not_found(logs):
    group_with_events(logs, {"s": [(now_ms(), "bye")]})

    logs.delete_log_stream(logGroupName=GROUP, logStreamName="s")

    assert logs.describe_log_streams(logGroupName=GROUP)["logStreams"] == []
    assert raised(logs.delete_log_stream, logGroupName=GROUP, logStreamName="s") == NOT_FOUND_STREAM


def test_a_group_can_be_named_by_its_own_arn(logs, account):
    group_with_events(logs, {"s": [(now_ms(), "hi")]})
    arn = f"arn:aws:logs:us-east-1:{account.account_id}:log-group:{GROUP}"

    assert logs.describe_log_streams(logGroupIdentifier=arn)["logStreams"][0]["logStreamName"] == "s"
    assert logs.get_log_events(logGroupIdentifier=arn, logStreamName="s")["events"][0]["message"] == "hi"


def test_a_group_named_twice_or_not_at_all_is_refused(logs, account):
    group_with_events(logs, {"s": []})
    arn = f"arn:aws:logs:us-east-1:{account.account_id}:log-group:{GROUP}"

    assert raised(logs.describe_log_streams, logGroupName=GROUP, logGroupIdentifier=arn) == (
        "InvalidParameterException", "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    assert raised(logs.describe_log_streams) == (
        "InvalidParameterException", "Should provide either name or ARN of the log group.")


# --- PutLogEvents -------------------------------------------------------------------------------------------------

def test_put_events_are_read_back_in_order(logs):
    t = now_ms()
    group_with_events(logs, {"s": []})

    answer = logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": t - 2, "message": "one"}, {"timestamp": t - 1, "message": "two"}])

    assert re.fullmatch(r"\d{56}", answer["nextSequenceToken"]) and "rejectedLogEventsInfo" not in answer
    events = logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"]
    assert [(e["timestamp"], e["message"]) for e in events] == [(t - 2, "one"), (t - 1, "two")]


def test_events_into_a_missing_stream_are_refused(logs):
    logs.create_log_group(logGroupName=GROUP)

    assert raised(logs.put_log_events, logGroupName=GROUP, logStreamName="nope",
                  logEvents=[{"timestamp": now_ms(), "message": "x"}]) == NOT_FOUND_STREAM


def test_events_out_of_chronological_order_are_refused_whole(logs):
    group_with_events(logs, {"s": []})
    t = now_ms()

    assert raised(logs.put_log_events, logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": t, "message": "later"}, {"timestamp": t - 1, "message": "earlier"}]) == (
        "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
    assert logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"] == []


def test_a_batch_over_a_megabyte_counting_26_bytes_an_event_is_refused(logs):
    group_with_events(logs, {"s": []})
    t = now_ms()
    # 2 × (524,275 + 26) = 1,048,602 bytes: 26 over, though the messages alone would fit.
    events = [{"timestamp": t, "message": "x" * 524_275}, {"timestamp": t, "message": "y" * 524_275}]

    assert raised(logs.put_log_events, logGroupName=GROUP, logStreamName="s", logEvents=events) == (
        "InvalidParameterException", "Upload too large: 1048602 bytes exceeds limit of 1048576")


def test_too_old_too_new_and_expired_events_are_rejected_and_the_rest_kept(logs):
    group_with_events(logs, {"s": []})
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)
    t, day = now_ms(), 86_400_000
    events = [{"timestamp": t - 15 * day, "message": "too old"}, {"timestamp": t - 2 * day, "message": "expired"},
              {"timestamp": t - 1000, "message": "kept"}, {"timestamp": t + 3 * 3_600_000, "message": "too new"}]

    answer = logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=events)

    assert answer["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "expiredLogEventEndIndex": 2,
                                               "tooNewLogEventStartIndex": 3}
    events = logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["kept"]


def test_accepted_events_spanning_more_than_a_day_are_refused(logs):
    group_with_events(logs, {"s": []})
    t = now_ms()

    assert raised(logs.put_log_events, logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": t - 26 * 3_600_000, "message": "a"}, {"timestamp": t, "message": "b"}]) == (
        "InvalidParameterException",
        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")


# --- GetLogEvents -------------------------------------------------------------------------------------------------

def test_by_default_the_newest_events_come_oldest_first(logs):
    t = now_ms() - 10_000
    group_with_events(logs, {"s": [(t + n, f"line {n}") for n in range(5)]})

    answer = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=2)

    assert [e["message"] for e in answer["events"]] == ["line 3", "line 4"]
    assert re.fullmatch(r"f/\d{56}/s", answer["nextForwardToken"])
    assert re.fullmatch(r"b/\d{56}/s", answer["nextBackwardToken"])


def test_forward_tokens_read_the_stream_to_its_end_and_then_stay_the_same(logs):
    t = now_ms() - 10_000
    group_with_events(logs, {"s": [(t + n, f"line {n}") for n in range(5)]})

    seen, token = [], None
    for _ in range(10):
        kwargs = {"nextToken": token} if token else {}
        answer = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True, limit=2, **kwargs)
        seen += [e["message"] for e in answer["events"]]
        if answer["nextForwardToken"] == token:
            break
        token = answer["nextForwardToken"]

    assert seen == [f"line {n}" for n in range(5)]
    assert answer["events"] == []


def test_a_forward_token_at_the_end_finds_events_put_later(logs):
    t = now_ms() - 10_000
    group_with_events(logs, {"s": [(t, "first")]})
    end = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True)["nextForwardToken"]

    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[{"timestamp": t + 1, "message": "next"}])
    answer = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True, nextToken=end)

    assert [e["message"] for e in answer["events"]] == ["next"]


def test_backward_tokens_read_towards_the_start(logs):
    t = now_ms() - 10_000
    group_with_events(logs, {"s": [(t + n, f"line {n}") for n in range(5)]})
    last = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=2)

    before = logs.get_log_events(logGroupName=GROUP, logStreamName="s", limit=2,
                                 nextToken=last["nextBackwardToken"])

    assert [e["message"] for e in before["events"]] == ["line 1", "line 2"]


def test_a_time_window_includes_its_start_and_excludes_its_end(logs):
    t = now_ms() - 10_000
    group_with_events(logs, {"s": [(t + n, f"line {n}") for n in range(5)]})

    answer = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startTime=t + 1, endTime=t + 3,
                                 startFromHead=True)

    assert [e["message"] for e in answer["events"]] == ["line 1", "line 2"]


def test_a_stream_token_not_made_here_is_refused(logs):
    group_with_events(logs, {"s": []})

    assert raised(logs.get_log_events, logGroupName=GROUP, logStreamName="s", nextToken="f/123/s") == BAD_TOKEN


def test_events_of_a_missing_stream_are_not_found(logs):
    group_with_events(logs, {"s": []})

    assert raised(logs.get_log_events, logGroupName=GROUP, logStreamName="other") == NOT_FOUND_STREAM


# --- FilterLogEvents ----------------------------------------------------------------------------------------------

def lambda_like_group(logs) -> int:
    t = now_ms() - 60_000
    group_with_events(logs, {
        "env-a": [(t, "START RequestId: 1"), (t + 2, "[ERROR] Task timed out after 3.00 seconds"),
                  (t + 4, "END RequestId: 1")],
        "env-b": [(t + 1, "START RequestId: 2"), (t + 3, "WARN slow"), (t + 5, "END RequestId: 2")],
    })
    return t


def test_events_of_all_streams_come_interleaved_by_time_with_their_stream_and_id(logs):
    t = lambda_like_group(logs)

    events = logs.filter_log_events(logGroupName=GROUP)["events"]

    assert [(e["timestamp"] - t, e["logStreamName"]) for e in events] == [
        (0, "env-a"), (1, "env-b"), (2, "env-a"), (3, "env-b"), (4, "env-a"), (5, "env-b")]
    assert all(re.fullmatch(r"\d{56}", e["eventId"]) for e in events)
    assert len({e["eventId"] for e in events}) == 6
    assert all(e["ingestionTime"] >= t for e in events)


def test_a_term_a_phrase_and_alternatives_select_events(logs):
    lambda_like_group(logs)

    def messages(pattern):
        return [e["message"] for e in logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)["events"]]

    assert messages("ERROR") == ["[ERROR] Task timed out after 3.00 seconds"]
    assert messages('"Task timed out"') == ["[ERROR] Task timed out after 3.00 seconds"]
    assert messages("?ERROR ?WARN") == ["[ERROR] Task timed out after 3.00 seconds", "WARN slow"]
    assert messages("error") == []
    assert len(messages("")) == 6


def test_streams_are_chosen_by_name_or_by_prefix_not_both(logs):
    lambda_like_group(logs)

    by_name = logs.filter_log_events(logGroupName=GROUP, logStreamNames=["env-b"])["events"]
    by_prefix = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="env-a")["events"]

    assert {e["logStreamName"] for e in by_name} == {"env-b"} and len(by_name) == 3
    assert {e["logStreamName"] for e in by_prefix} == {"env-a"} and len(by_prefix) == 3
    assert raised(logs.filter_log_events, logGroupName=GROUP, logStreamNames=["env-a"],
                  logStreamNamePrefix="env")[0] == "InvalidParameterException"


def test_a_filter_time_window_includes_both_ends(logs):
    t = lambda_like_group(logs)

    events = logs.filter_log_events(logGroupName=GROUP, startTime=t + 1, endTime=t + 3)["events"]

    assert [e["timestamp"] - t for e in events] == [1, 2, 3]


def test_filtered_events_come_a_page_at_a_time_each_once(logs):
    lambda_like_group(logs)

    first = logs.filter_log_events(logGroupName=GROUP, limit=4)
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=GROUP,
                                                                  PaginationConfig={"PageSize": 4}))

    assert len(first["events"]) == 4 and first["nextToken"]
    ids = [e["eventId"] for page in pages for e in page["events"]]
    assert len(ids) == 6 and len(set(ids)) == 6


def test_newest_first_when_asked_from_2024_on(logs):
    t = lambda_like_group(logs)

    events = logs.filter_log_events(logGroupName=GROUP, startFromHead=False, startTime=t, limit=2)["events"]

    assert [e["timestamp"] - t for e in events] == [5, 4]
    assert raised(logs.filter_log_events, logGroupName=GROUP, startFromHead=False)[0] == \
        "InvalidParameterException"


def test_a_json_filter_pattern_is_refused_with_a_sentence(logs):
    lambda_like_group(logs)

    code, message = raised(logs.filter_log_events, logGroupName=GROUP, filterPattern='{ $.level = "ERROR" }')

    assert code == "InvalidParameterException" and "Sandcloud does not support JSON filter patterns" in message


# --- another learner ----------------------------------------------------------------------------------------------

@pytest.fixture
def adas_group(logs, account):
    group_with_events(logs, {"s": [(now_ms(), "ada's secret")]})
    return f"arn:aws:logs:us-east-1:{account.account_id}:log-group:{GROUP}"


def test_another_learner_lists_none_of_the_groups(other_logs, adas_group, account):
    assert other_logs.describe_log_groups()["logGroups"] == []
    assert other_logs.describe_log_groups(logGroupNamePrefix="/aws")["logGroups"] == []
    assert other_logs.describe_log_groups(logGroupNamePattern="hello")["logGroups"] == []
    assert other_logs.describe_log_groups(includeLinkedAccounts=True,
                                          accountIdentifiers=[account.account_id])["logGroups"] == []


def test_another_learner_reaches_nothing_by_name(other_logs, adas_group):
    by_name = {"logGroupName": GROUP}

    assert raised(other_logs.get_log_events, logStreamName="s", **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.filter_log_events, **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.describe_log_streams, **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.put_log_events, logStreamName="s", logEvents=[
        {"timestamp": now_ms(), "message": "planted"}], **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.put_retention_policy, retentionInDays=1, **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.delete_log_stream, logStreamName="s", **by_name) == NOT_FOUND_GROUP
    assert raised(other_logs.delete_log_group, **by_name) == NOT_FOUND_GROUP


def test_another_learner_is_denied_by_arn(other_logs, other_account, adas_group):
    for call, kwargs in ((other_logs.get_log_events, {"logStreamName": "s"}), (other_logs.filter_log_events, {}),
                         (other_logs.describe_log_streams, {})):
        code, message = raised(call, logGroupIdentifier=adas_group, **kwargs)
        assert code == "AccessDeniedException"
        assert message.startswith(f"User: arn:aws:iam::{other_account.account_id}:user/grace is not authorized "
                                  f"to perform: logs:")
        assert "secret" not in message
    assert raised(other_logs.describe_log_groups, logGroupIdentifiers=[adas_group])[0] == "AccessDeniedException"


def test_the_same_group_name_in_another_account_is_its_own_group(logs, other_logs, adas_group):
    group_with_events(other_logs, {"s": [(now_ms(), "grace's own")]})
    other_logs.delete_log_group(logGroupName=GROUP)

    events = logs.filter_log_events(logGroupName=GROUP)["events"]
    assert [e["message"] for e in events] == ["ada's secret"]


def test_a_token_from_another_account_is_refused(logs, other_logs, adas_group):
    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "2"}])
    token = logs.filter_log_events(logGroupName=GROUP, limit=1)["nextToken"]
    group_with_events(other_logs, {"s": [(now_ms(), "grace's own")]})

    assert raised(other_logs.filter_log_events, logGroupName=GROUP, nextToken=token) == BAD_TOKEN
