"""WebSocket routes of the Lambda console: a function's live log, the learner's own or, read-only, their instructor's."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/functions/learner/<int:learner_id>/<str:name>/logs/", consumers.FunctionLogConsumer.as_asgi()),
    path("ws/functions/<str:name>/logs/", consumers.FunctionLogConsumer.as_asgi()),
]
