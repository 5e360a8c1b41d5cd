"""Sandbox progress events: kept in a short Redis list for replay and pushed live to the page over the channel layer."""
from __future__ import annotations

import json
import time
from functools import lru_cache

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings


def group_name(sandbox_id: int) -> str:
    return f"sandbox-{sandbox_id}"


def _replay_key(sandbox_id: int) -> str:
    return f"sandcloud:{settings.SANDCLOUD['INSTANCE']}:sandbox:{sandbox_id}:events"


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def event_publish(*, sandbox_id: int, state: str, message: str, level: str = "info", extra: dict | None = None) -> dict:
    """Records an event for replay and sends it to everyone watching. Call after the change has committed.

    `extra` carries fields of other apps' events (e.g. a lab attempt) that ride the sandbox's stream.
    """
    event = {**(extra or {}), "sandbox": sandbox_id, "state": state, "message": message, "level": level,
             "at": time.time()}
    key = _replay_key(sandbox_id)
    try:
        pipe = redis_client().pipeline()
        pipe.rpush(key, json.dumps(event))
        pipe.ltrim(key, -settings.SANDCLOUD["EVENT_REPLAY"], -1)
        pipe.expire(key, 24 * 3600)
        pipe.execute()
        async_to_sync(get_channel_layer().group_send)(group_name(sandbox_id), {"type": "sandbox.event", "event": event})
    except (redis.RedisError, OSError):
        # Events are a courtesy on top of the database state, which the page also polls; never fail a change for them.
        pass
    return event


def events_recent(*, sandbox_id: int) -> list[dict]:
    try:
        return [json.loads(raw) for raw in redis_client().lrange(_replay_key(sandbox_id), 0, -1)]
    except (redis.RedisError, OSError):
        return []
