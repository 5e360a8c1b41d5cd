"""The instructor dashboard's live feed: attempts of the cohort's learners as they land."""
from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .events import group_name
from .selectors import cohort_for_instructor


class CohortConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        cohort_id = int(self.scope["url_route"]["kwargs"]["cohort_id"])
        cohort = await sync_to_async(cohort_for_instructor)(instructor=user, cohort_id=cohort_id)
        if cohort is None:
            await self.close(code=4403)
            return
        self.group = group_name(cohort.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def cohort_attempt(self, message):
        await self.send(text_data=json.dumps({k: v for k, v in message.items() if k != "type"} | {"type": "attempt"}))

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
