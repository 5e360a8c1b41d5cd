"""The ASGI application: Django for HTTP, Channels for the terminal and live-stream WebSockets."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from cohorts.routing import websocket_urlpatterns as cohort_routes  # noqa: E402
from config.websockets import SendBufferMiddleware, SocketThreadsMiddleware  # noqa: E402
from sandbox.awsapi.asgi import EdgeApplication  # noqa: E402
from sandbox.functions.routing import websocket_urlpatterns as function_routes  # noqa: E402
from sandbox.routing import websocket_urlpatterns as sandbox_routes  # noqa: E402

application = ProtocolTypeRouter({
    # AWS API requests under /aws skip Django's request cycle (sandbox/awsapi/asgi.py says what is kept).
    "http": EdgeApplication(django_asgi_app),
    # Outermost, because only here is `send` still daphne's own (config/websockets.py says why it matters).
    "websocket": SendBufferMiddleware(SocketThreadsMiddleware(
        AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(sandbox_routes + cohort_routes + function_routes))))),
})
