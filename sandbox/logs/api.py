"""The CloudWatch Logs API (botocore service `logs`, JSON 1.1): one method per AWS action, each within the caller's
own account; the edge endpoint (sandbox/awsapi) has parsed and validated the members against botocore's model."""
from __future__ import annotations

import re

from sandbox.awsapi import identity, pagination
from sandbox.awsapi.providers import RequestContext

from . import selectors, services
from .errors import InvalidNextToken, InvalidParameter, LogGroupNotFound, LogStreamNotFound
from .models import LogEvent, LogGroup, LogStream
from .patterns import filter_pattern_parse

# GetLogEvents' tokens look like AWS's: "f/" or "b/", 56 digits, "/s". Here the digits are the position of the
# event the page ended (f) or began (b) at: its timestamp (20 digits) and id (36). A forged one can only move the
# reader within a stream it may read anyway.
_STREAM_TOKEN = re.compile(r"^([fb])/(\d{20})(\d{36})/s$")
# FilterLogEvents' startFromHead=false is served only from this time on (Jan 1, 2024 00:00:00 UTC), as AWS says.
_NEWEST_FIRST_FROM = 1_704_067_200_000


def _stream_token(direction: str, position: selectors.Position) -> str:
    timestamp, pk = position
    return f"{direction}/{max(timestamp, 0):020d}{pk:036d}/s"


def _event_id(event: LogEvent) -> str:
    return f"{max(event.timestamp, 0):020d}{event.pk:036d}"


def _group_arn(context: RequestContext, group: LogGroup) -> str:
    return identity.arn_for(account=context.account, service="logs", region=context.region,
                            resource=f"log-group:{group.name}")


def _group_name(context: RequestContext, identifier: str, action: str) -> str:
    """A log group's name from a `logGroupIdentifier`: the name itself, or its ARN (the form without the trailing
    `:*`, which the model's pattern refuses). An ARN of another account is refused (AccessDeniedException) before
    anything is looked up."""
    arn = identity.arn_check(account=context.account, arn=identifier, action=action)
    if arn is None:
        return identifier
    resource = arn.resource
    if arn.service != "logs" or not resource.startswith("log-group:"):
        raise InvalidParameter(f"{identifier} is not the ARN of a log group.")
    return resource[len("log-group:"):]


def _group(context: RequestContext, *, name: str | None, identifier: str | None, action: str) -> LogGroup:
    if name and identifier:
        raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier:
        name = _group_name(context, identifier, action)
    if not name:
        raise InvalidParameter("Should provide either name or ARN of the log group.")
    group = selectors.log_group_for(account=context.account, name=name)
    if group is None:
        raise LogGroupNotFound()
    group.account = context.account
    return group


def _stream(group: LogGroup, name: str) -> LogStream:
    stream = selectors.log_stream_for(group=group, name=name)
    if stream is None:
        raise LogStreamNotFound()
    return stream


def _keyset_page(items: list, *, key, descending: bool, token: str | None, limit: int, scope: str):
    """One page of `items` in `key` order (descending if asked) after the token's key, and the next token."""
    items = sorted(items, key=key, reverse=descending)
    start = 0
    if token:
        after = pagination.token_decode(token, scope=scope, error=InvalidNextToken())
        beyond = (lambda item: key(item) < after) if descending else (lambda item: key(item) > after)
        start = next((index for index, item in enumerate(items) if beyond(item)), len(items))
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return chunk, (pagination.token_encode(key(chunk[-1]), scope=scope) if more and chunk else None)


class LogsApi:
    """CloudWatch Logs for learners: groups, streams, events, retention."""

    # --- Log groups -------------------------------------------------------------------------------------------------

    def create_log_group(self, context: RequestContext, *, logGroupName: str, kmsKeyId: str | None = None,
                         tags: dict | None = None, logGroupClass: str | None = None,
                         deletionProtectionEnabled: bool | None = None) -> dict:
        if kmsKeyId:
            raise InvalidParameter("Sandcloud does not support KMS keys yet: create the log group without kmsKeyId.")
        if deletionProtectionEnabled:
            raise InvalidParameter("Sandcloud does not support deletion protection for log groups yet.")
        services.log_group_create(account=context.account, group_name=logGroupName,
                                  log_group_class=logGroupClass or "STANDARD")
        return {}

    def delete_log_group(self, context: RequestContext, *, logGroupName: str) -> dict:
        services.log_group_delete(account=context.account, group_name=logGroupName)
        return {}

    def describe_log_groups(self, context: RequestContext, *, logGroupNamePrefix: str | None = None,
                            logGroupNamePattern: str | None = None, nextToken: str | None = None,
                            limit: int | None = None, logGroupClass: str | None = None,
                            logGroupIdentifiers: list[str] | None = None, accountIdentifiers=None,
                            includeLinkedAccounts: bool | None = None) -> dict:
        # A Sandcloud account is linked to no other (cross-account observability), so accountIdentifiers and
        # includeLinkedAccounts can only ever add nothing: the caller's own groups are all there is.
        if logGroupNamePrefix and logGroupNamePattern:
            raise InvalidParameter("LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                                   "parameters.")
        groups = selectors.log_groups_for(account=context.account, prefix=logGroupNamePrefix or "",
                                          pattern=logGroupNamePattern or "")
        if logGroupIdentifiers:
            wanted = {_group_name(context, identifier, "logs:DescribeLogGroups") for identifier in logGroupIdentifiers}
            groups = [group for group in groups if group.name in wanted]
        if logGroupClass:
            groups = [group for group in groups if group.log_group_class == logGroupClass]
        page = pagination.paginate(groups, token=nextToken, limit=pagination.page_size(limit, default=50),
                                   scope=f"logs:DescribeLogGroups:{context.account_id}",
                                   key=lambda group: group.name, invalid_token=InvalidNextToken())
        stored = selectors.log_groups_stored_bytes(groups=page.items) if not logGroupNamePattern else {}
        out = {"logGroups": [self._group_out(context, group, stored, brief=bool(logGroupNamePattern))
                             for group in page.items]}
        if page.next_token:
            out["nextToken"] = page.next_token
        return out

    @staticmethod
    def _group_out(context: RequestContext, group: LogGroup, stored: dict[int, int], *, brief: bool) -> dict:
        arn = _group_arn(context, group)
        out = {"logGroupName": group.name, "creationTime": group.creation_time, "arn": f"{arn}:*"}
        if brief:  # what AWS answers a logGroupNamePattern with
            return out
        out.update(logGroupArn=arn, metricFilterCount=0, storedBytes=stored.get(group.pk, 0),
                   logGroupClass=group.log_group_class, deletionProtectionEnabled=False)
        if group.retention_in_days:
            out["retentionInDays"] = group.retention_in_days
        return out

    def put_retention_policy(self, context: RequestContext, *, logGroupName: str, retentionInDays: int) -> dict:
        group = _group(context, name=logGroupName, identifier=None, action="logs:PutRetentionPolicy")
        services.log_retention_put(group=group, retention_in_days=retentionInDays)
        return {}

    def delete_retention_policy(self, context: RequestContext, *, logGroupName: str) -> dict:
        group = _group(context, name=logGroupName, identifier=None, action="logs:DeleteRetentionPolicy")
        services.log_retention_delete(group=group)
        return {}

    # --- Log streams ------------------------------------------------------------------------------------------------

    def create_log_stream(self, context: RequestContext, *, logGroupName: str, logStreamName: str) -> dict:
        group = _group(context, name=logGroupName, identifier=None, action="logs:CreateLogStream")
        services.log_stream_create(group=group, stream_name=logStreamName)
        return {}

    def delete_log_stream(self, context: RequestContext, *, logGroupName: str, logStreamName: str) -> dict:
        group = _group(context, name=logGroupName, identifier=None, action="logs:DeleteLogStream")
        services.log_stream_delete(group=group, stream_name=logStreamName)
        return {}

    def describe_log_streams(self, context: RequestContext, *, logGroupName: str | None = None,
                             logGroupIdentifier: str | None = None, logStreamNamePrefix: str | None = None,
                             orderBy: str | None = None, descending: bool | None = None,
                             nextToken: str | None = None, limit: int | None = None) -> dict:
        group = _group(context, name=logGroupName, identifier=logGroupIdentifier, action="logs:DescribeLogStreams")
        order_by = orderBy or "LogStreamName"
        if order_by == "LastEventTime" and logStreamNamePrefix:
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = selectors.log_streams_for(group=group, prefix=logStreamNamePrefix or "")
        times: dict[int, dict] = {}
        if order_by == "LastEventTime":
            # Streams without events come first, as if their last event were at time 0.
            times = selectors.log_streams_event_times(group=group)
            key = lambda stream: f"{times.get(stream.pk, {}).get('last', 0):020d} {stream.name}"  # noqa: E731
        else:
            key = lambda stream: stream.name  # noqa: E731
        page, token = _keyset_page(streams, key=key, descending=bool(descending), token=nextToken,
                                   limit=pagination.page_size(limit, default=50),
                                   scope=f"logs:DescribeLogStreams:{context.account_id}:{group.pk}:{order_by}:"
                                         f"{bool(descending)}")
        if order_by != "LastEventTime":
            times = selectors.log_streams_event_times(group=group, stream_ids=[stream.pk for stream in page])
        out = {"logStreams": [self._stream_out(context, group, stream, times.get(stream.pk)) for stream in page]}
        if token:
            out["nextToken"] = token
        return out

    @staticmethod
    def _stream_out(context: RequestContext, group: LogGroup, stream: LogStream, times: dict | None) -> dict:
        out = {"logStreamName": stream.name, "creationTime": stream.creation_time, "storedBytes": 0,
               "arn": identity.arn_for(account=context.account, service="logs", region=context.region,
                                       resource=f"log-group:{group.name}:log-stream:{stream.name}")}
        if times:
            out.update(firstEventTimestamp=times["first"], lastEventTimestamp=times["last"],
                       lastIngestionTime=times["ingested"])
        return out

    # --- Log events -------------------------------------------------------------------------------------------------

    def put_log_events(self, context: RequestContext, *, logGroupName: str, logStreamName: str, logEvents: list,
                       sequenceToken: str | None = None, entity: dict | None = None) -> dict:
        # The sequence token is ignored, as AWS has ignored it since January 2023.
        group = _group(context, name=logGroupName, identifier=None, action="logs:PutLogEvents")
        stream = _stream(group, logStreamName)
        rejected = services.log_events_submit(
            stream=stream, events=[(event["timestamp"], event["message"]) for event in logEvents])
        out = {"nextSequenceToken": f"{services.now_ms():056d}"}
        if rejected.as_output():
            out["rejectedLogEventsInfo"] = rejected.as_output()
        return out

    def get_log_events(self, context: RequestContext, *, logStreamName: str, logGroupName: str | None = None,
                       logGroupIdentifier: str | None = None, startTime: int | None = None,
                       endTime: int | None = None, nextToken: str | None = None, limit: int | None = None,
                       startFromHead: bool | None = None, unmask: bool | None = None) -> dict:
        group = _group(context, name=logGroupName, identifier=logGroupIdentifier, action="logs:GetLogEvents")
        stream = _stream(group, logStreamName)
        direction, position = None, None
        if nextToken:
            match = _STREAM_TOKEN.match(nextToken)
            if match is None:
                raise InvalidNextToken()
            direction, position = match[1], (int(match[2]), int(match[3]))
        events = selectors.log_stream_events(
            stream=stream, start_time=startTime, end_time=endTime,
            after=position if direction == "f" else None, before=position if direction == "b" else None,
            from_head=bool(startFromHead), limit=pagination.page_size(limit, default=10_000))
        if events:
            forward = _stream_token("f", (events[-1].timestamp, events[-1].pk))
            backward = _stream_token("b", (events[0].timestamp, events[0].pk))
        else:
            # Nothing further that way: the token given comes back unchanged, which is how a reader knows it is at
            # the end; with no token, both point at the start, so reading forward later finds every new event.
            forward = _stream_token("f", position or (0, 0))
            backward = _stream_token("b", position or (0, 0))
        return {"events": [{"timestamp": event.timestamp, "message": event.message,
                            "ingestionTime": event.ingestion_time} for event in events],
                "nextForwardToken": forward, "nextBackwardToken": backward}

    def filter_log_events(self, context: RequestContext, *, logGroupName: str | None = None,
                          logGroupIdentifier: str | None = None, logStreamNames: list[str] | None = None,
                          logStreamNamePrefix: str | None = None, startTime: int | None = None,
                          endTime: int | None = None, filterPattern: str | None = None,
                          nextToken: str | None = None, limit: int | None = None,
                          startFromHead: bool | None = None, interleaved: bool | None = None,
                          unmask: bool | None = None) -> dict:
        # `interleaved` is ignored: events from all the streams always come interleaved, as on AWS since 2019.
        group = _group(context, name=logGroupName, identifier=logGroupIdentifier, action="logs:FilterLogEvents")
        if logStreamNames and logStreamNamePrefix:
            raise InvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        pattern = filter_pattern_parse(filterPattern)
        scope = f"logs:FilterLogEvents:{context.account_id}:{group.pk}"
        newest_first, after = startFromHead is False, None
        if nextToken:
            # The token carries the direction of the first request, as AWS's does.
            position = pagination.token_decode(nextToken, scope=scope, error=InvalidNextToken())
            try:
                direction, timestamp, pk = str(position).split(":")
                newest_first, after = direction == "d", (int(timestamp), int(pk))
            except ValueError:
                raise InvalidNextToken() from None
        elif newest_first and (startTime is None or startTime < _NEWEST_FIRST_FROM):
            raise InvalidParameter("startFromHead set to false is supported only when startTime is on or after "
                                   "Jan 1, 2024 00:00:00 UTC.")
        scan = selectors.log_group_events_scan(
            group=group, stream_names=logStreamNames, stream_prefix=logStreamNamePrefix or "", start_time=startTime,
            end_time=endTime, pattern=pattern, after=after, newest_first=newest_first,
            limit=pagination.page_size(limit, default=10_000))
        out = {"events": [{"logStreamName": event.stream.name, "timestamp": event.timestamp,
                           "message": event.message, "ingestionTime": event.ingestion_time,
                           "eventId": _event_id(event)} for event in scan.events],
               "searchedLogStreams": []}
        if scan.resume_after is not None:
            timestamp, pk = scan.resume_after
            out["nextToken"] = pagination.token_encode(f"{'d' if newest_first else 'a'}:{timestamp}:{pk}",
                                                       scope=scope)
        return out
