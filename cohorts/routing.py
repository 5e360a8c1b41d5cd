"""WebSocket routes of the instructor dashboard."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/cohorts/<int:cohort_id>/", consumers.CohortConsumer.as_asgi()),
]
