"""WebSocket routes of the sandbox app."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/sandboxes/<int:sandbox_id>/terminal/", consumers.TerminalConsumer.as_asgi()),
    path("ws/sandboxes/<int:sandbox_id>/stream/", consumers.SandboxStreamConsumer.as_asgi()),
]
