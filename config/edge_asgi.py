"""The AWS edge listener's ASGI application (`manage.py awsedge` serves it): HTTP under /aws only, no WebSockets."""
import os

# Assigned, not defaulted: an inherited DJANGO_SETTINGS_MODULE=config.settings would serve the whole site to sandboxes.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.edge_settings"

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

django_asgi_app = get_asgi_application()
if settings.ROOT_URLCONF != "config.edge_urls":
    raise ImproperlyConfigured("config.edge_asgi must run with config.edge_settings, in a process of its own")

from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402

from sandbox.awsapi.asgi import EdgeApplication  # noqa: E402

application = ProtocolTypeRouter({"http": EdgeApplication(django_asgi_app), "websocket": WebsocketDenier.as_asgi()})
