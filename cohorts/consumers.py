"""The instructor dashboard's live feed: attempts of the cohort's learners as they land."""
from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from config.websockets import BoundedSendMixin

from .events import group_name
from .selectors import cohort_for_instructor

CLOSE_FORBIDDEN = 4403


class CohortConsumer(BoundedSendMixin, AsyncWebsocketConsumer):
    """Sends are bounded like every socket's: an instructor's tab that stops reading is closed (CLOSE_TOO_SLOW)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        cohort_id = int(self.scope["url_route"]["kwargs"]["cohort_id"])
        cohort = await sync_to_async(cohort_for_instructor)(instructor=user, cohort_id=cohort_id)
        if cohort is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await self.claim_socket():
            return
        self.cohort_id = cohort.pk
        self.group = group_name(cohort.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def cohort_attempt(self, message):
        # The instructor may have lost is_staff (or the cohort) since connecting: the socket's user is from then.
        if not await sync_to_async(self._still_instructs)():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send(text_data=json.dumps({k: v for k, v in message.items() if k != "type"} | {"type": "attempt"}))

    def _still_instructs(self) -> bool:
        user = get_user_model().objects.filter(pk=self.scope["user"].pk, is_active=True).first()
        return user is not None and cohort_for_instructor(instructor=user, cohort_id=self.cohort_id) is not None

    async def disconnect(self, code):
        self.release_socket()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
