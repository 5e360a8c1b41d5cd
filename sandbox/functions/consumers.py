"""The live log of a function's page: its CloudWatch log lines pushed over a WebSocket as they are stored.

Log lines are written by every web and worker process into the database, so the socket follows the table (one
indexed read every half second while it has something to say, after the last line it sent) rather than a channel
group that would have to be fed from every writer and drops when full. It is bounded like every socket: while the
browser has not read what was sent, nothing more is read or sent (BoundedSendMixin), and a tab that stopped reading
for good is closed with 4408.
"""
from __future__ import annotations

import asyncio
import json
import time

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from config.websockets import BoundedSendMixin

from . import console
from .models import Function

POLL_SECONDS = 0.5
RECHECK_SECONDS = 10
CLOSE_SIGNED_OUT, CLOSE_FORBIDDEN = 4401, 4403


class FunctionLogConsumer(BoundedSendMixin, AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        self.learner_id, self.function_name = kwargs.get("learner_id"), kwargs["name"]
        if not await sync_to_async(self._allowed)():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await self.claim_socket():
            return
        await self.accept()
        self.follower = asyncio.ensure_future(self._follow())

    def _allowed(self) -> bool:
        seen = console.console_for(viewer=self.scope["user"], learner_id=self.learner_id)
        if seen is None or seen.account is None:
            return False
        self.account = seen.account
        return Function.objects.filter(account=seen.account, name=self.function_name).exists()

    async def _follow(self) -> None:
        after, checked = None, time.monotonic()
        while True:
            await self.until_drained()
            if time.monotonic() - checked > RECHECK_SECONDS:
                # Handlers re-check: an instructor who stopped teaching the learner stops seeing their log.
                if not await sync_to_async(self._allowed)():
                    await self.close(code=CLOSE_FORBIDDEN)
                    return
                checked = time.monotonic()
            events = await sync_to_async(console.log_events)(account=self.account, function_name=self.function_name,
                                                            after_id=after)
            if events:
                after = events[-1]["id"]
                await self.send(text_data=json.dumps({"type": "logs", "events": events}))
                if self.closed_for_backlog:
                    return
            elif after is None:
                after = 0
                await self.send(text_data=json.dumps({"type": "logs", "events": []}))
            await asyncio.sleep(POLL_SECONDS)

    async def receive(self, text_data=None, bytes_data=None):
        pass  # the page only listens

    async def disconnect(self, code):
        self.release_socket()
        follower = getattr(self, "follower", None)
        if follower is not None:
            follower.cancel()
