"""Settings of the AWS edge listener that sandboxes reach (`manage.py awsedge`): the site's, serving only /aws."""
from config.settings import *  # noqa: F403 - the same database, keys, apps (their AWS providers) and logging
from config.settings import LOGGING, MIDDLEWARE
from sandbox.policy import AWS_EDGE_HOST

# Sandboxes sign their requests for this name (SigV4 signs the Host header); any other Host is refused with a 400.
ALLOWED_HOSTS = [AWS_EDGE_HOST]
# The edge endpoint and nothing else: no page, sign-in, admin, API or static file (WhiteNoise would answer /static/
# before any URL is resolved), and no debug page showing the settings to a learner.
ROOT_URLCONF = "config.edge_urls"
MIDDLEWARE = [name for name in MIDDLEWARE if name != "whitenoise.middleware.WhiteNoiseMiddleware"]
DEBUG = False
# A wrong Host is answered with a 400 and one line in the log, not a traceback per request a sandbox sends.
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "django.security.DisallowedHost": {"level": "CRITICAL"}}}
