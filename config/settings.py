"""Sandcloud settings; everything an operator may change is read from the environment (see README)."""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DEBUG = env_bool("SANDCLOUD_DEBUG", False)


def _secret_key() -> str:
    """The key from the environment, else one generated once and kept in var/ (never committed)."""
    if key := os.environ.get("SANDCLOUD_SECRET_KEY"):
        return key
    path = BASE_DIR / "var" / "secret_key"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = os.environ.get("SANDCLOUD_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("SANDCLOUD_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_celery_beat",
    "django_htmx",
    "sandbox",
    "labs",
    "lessons",
    "cohorts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

INSTANCE = os.environ.get("SANDCLOUD_INSTANCE", "default")
# Each instance has a database file of its own, so two installs sharing a machine never see each other's rows.
_SQLITE_NAME = "sandcloud.sqlite3" if INSTANCE == "default" else f"sandcloud-{INSTANCE}.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / _SQLITE_NAME}", conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one SQLite file: wait for locks instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so the web server and worker that browser tests start can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{INSTANCE}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages come from the npm registry (package.json); only their built files are served.
    ("vendor/xterm", NODE_MODULES / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", NODE_MODULES / "@xterm" / "addon-fit"),
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", NODE_MODULES / "bootstrap-icons" / "font"),
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/asciinema-player", NODE_MODULES / "asciinema-player" / "dist" / "bundle"),
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REDIS_URL = os.environ.get("SANDCLOUD_REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, exactly channels_redis's blocking-pop time: an idle
            # server then crashes its shared receive and drops every socket. Give the reads room.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
            # Bounded: a slow consumer loses messages beyond this instead of growing Redis without limit.
            "capacity": 500,
            "expiry": 30,
            "prefix": f"sandcloud-{INSTANCE}",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = f"sandcloud-{INSTANCE}"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sandbox-reap": {"task": "sandbox.tasks.sandbox_reap_task", "schedule": env_float("SANDCLOUD_REAP_SECONDS", 20.0)},
    "sandbox-warm-pool": {"task": "sandbox.tasks.warm_pool_fill_task", "schedule": 30.0},
}
CELERY_TIMEZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SANDCLOUD_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}

# --- The sandbox engine -------------------------------------------------------------------------------------------
SANDCLOUD = {
    # Every container, network and channel name carries this, so several installs (or test runs) share one engine.
    "INSTANCE": INSTANCE,
    "DOCKER_URL": os.environ.get("SANDCLOUD_DOCKER_URL", "unix:///var/run/docker.sock"),
    "DOCKER_TIMEOUT": env_int("SANDCLOUD_DOCKER_TIMEOUT", 30),
    "WORKSTATION_IMAGE": os.environ.get("SANDCLOUD_WORKSTATION_IMAGE", "sandcloud/workstation:1"),
    "PYTHON_IMAGE": os.environ.get("SANDCLOUD_PYTHON_IMAGE", "sandcloud/python:3.11"),
    # Optional registry references tried with `docker pull` before building locally.
    "PULL": {
        "workstation": os.environ.get("SANDCLOUD_WORKSTATION_PULL", ""),
        "python": os.environ.get("SANDCLOUD_PYTHON_PULL", ""),
    },
    "DEFAULT_LIMITS": {
        "memory_mb": env_int("SANDCLOUD_MEMORY_MB", 256),
        "cpus": env_float("SANDCLOUD_CPUS", 0.5),
        "pids": env_int("SANDCLOUD_PIDS", 256),
        "home_mb": env_int("SANDCLOUD_HOME_MB", 64),
        "tmp_mb": env_int("SANDCLOUD_TMP_MB", 32),
        "nofile": env_int("SANDCLOUD_NOFILE", 1024),
        "log_max_size": os.environ.get("SANDCLOUD_LOG_MAX_SIZE", "1m"),
        "log_max_files": env_int("SANDCLOUD_LOG_MAX_FILES", 2),
    },
    # Learner networks are carved from this range (one /26 each: 16,384 networks), not from Docker's default pools.
    "NETWORK_POOL": os.environ.get("SANDCLOUD_NETWORK_POOL", "10.224.0.0/12"),
    "NETWORK_PREFIX": env_int("SANDCLOUD_NETWORK_PREFIX", 26),
    "TTL_MINUTES": env_int("SANDCLOUD_TTL_MINUTES", 120),
    "IDLE_MINUTES": env_int("SANDCLOUD_IDLE_MINUTES", 30),
    "MAX_PER_LEARNER": env_int("SANDCLOUD_MAX_PER_LEARNER", 2),
    "MAX_PER_HOST": env_int("SANDCLOUD_MAX_PER_HOST", 300),
    "WARM_POOL_SIZE": env_int("SANDCLOUD_WARM_POOL_SIZE", 2),
    # A provisioning sandbox older than this is considered abandoned by its worker.
    "PROVISION_STUCK_SECONDS": env_int("SANDCLOUD_PROVISION_STUCK_SECONDS", 120),
    # Containers younger than this are never treated as orphans (their database row may not be committed yet).
    "ORPHAN_GRACE_SECONDS": env_int("SANDCLOUD_ORPHAN_GRACE_SECONDS", 30),
    "LOG_REPLAY_LINES": env_int("SANDCLOUD_LOG_REPLAY_LINES", 200),
    # Terminal recordings: at most this much per sandbox, kept this many days after the sandbox ends.
    "RECORDING_MAX_MB": env_int("SANDCLOUD_RECORDING_MAX_MB", 32),
    "RECORDING_RETENTION_DAYS": env_int("SANDCLOUD_RECORDING_RETENTION_DAYS", 30),
    "EVENT_REPLAY": env_int("SANDCLOUD_EVENT_REPLAY", 100),
}
