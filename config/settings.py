"""Sandcloud settings; everything an operator may change is read from the environment (see README)."""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, WASM_UNSAFE_EVAL

from config.secret_key import secret_key_read_or_create
from sandbox.policy import AWS_EDGE_HOST

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DEBUG = env_bool("SANDCLOUD_DEBUG", False)


# The key from the environment, else one generated once and kept in var/ (never committed).
SECRET_KEY = os.environ.get("SANDCLOUD_SECRET_KEY") or secret_key_read_or_create(path=BASE_DIR / "var" / "secret_key")
ALLOWED_HOSTS = os.environ.get("SANDCLOUD_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("SANDCLOUD_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"  # JSON under /api/

# Served through a TLS proxy on this machine (README, "In production"): it sets X-Forwarded-Proto and appends
# X-Forwarded-For. Cookies then travel only over HTTPS and browsers are told to use nothing else.
BEHIND_TLS_PROXY = env_bool("SANDCLOUD_HTTPS", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SANDCLOUD_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SANDCLOUD_HSTS_INCLUDE_SUBDOMAINS", False)

# Every page runs only the scripts served from here. 'wasm-unsafe-eval' lets the asciinema player compile its
# terminal emulator (WebAssembly, not JavaScript eval). Styles allow 'unsafe-inline': xterm.js and the player write
# <style> elements at run time that cannot carry a nonce, and CSS cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, WASM_UNSAFE_EVAL],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],  # CSP Level 3: 'self' also matches ws: and wss: to this host
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

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
    "csp",
    "axes",
    "allauth",
    "allauth.account",
    "accounts",
    "sandbox",
    "sandbox.awsapi",
    "sandbox.logs",
    "sandbox.scheduler",
    "sandbox.functions",
    "sandbox.registry",
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
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, so it sees the flag a locked-out sign-in leaves on the request and answers with the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "accounts.context_processors.signup",
            ],
        },
    },
]

INSTANCE = os.environ.get("SANDCLOUD_INSTANCE", "default")
# Each process of a parallel test run (pytest-xdist's workers, ops/test.sh) is an install of its own: its containers,
# queues, channels, database file and Docker proxy directory are never another worker's. What a worker starts
# (daphne, a Celery worker, the registry, the edge) inherits the variable and so lands in the same namespace.
if os.environ.get("PYTEST_XDIST_WORKER"):
    INSTANCE = f"{INSTANCE}-{os.environ['PYTEST_XDIST_WORKER']}"
# Each instance has a database file of its own, so two installs sharing a machine never see each other's rows.
_SQLITE_NAME = "sandcloud.sqlite3" if INSTANCE == "default" else f"sandcloud-{INSTANCE}.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / _SQLITE_NAME}", conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one SQLite file: wait for locks instead of failing with "database is locked".
    # WAL: readers never wait for a writer, and a commit appends to the log instead of rewriting the file with several
    # fsyncs (synchronous=NORMAL is safe with WAL: a power cut may lose the last commits, never the file). A class of
    # thirty starting a lab at once queued on those commits (bench herd).
    # Writers queue for their turn instead of polling SQLite's lock (config/sqlite/base.py says why).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so the web server and worker that browser tests start can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{INSTANCE}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "accounts.hashers.OneTimePasswordHasher",  # only for instructors' one-time passwords (accounts/hashers.py)
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# --- Accounts (django-allauth) ------------------------------------------------------------------------------------
# Sign-up, password change and reset, e-mail addresses. Signing in and out stay Django's own views under the same
# URLs (`login`, `logout`), where django-axes' lockout already holds (config/signin.py); allauth's sign-in view is
# shadowed by them, so there is one sign-in form and one lockout.
SANDCLOUD_SIGNUP = os.environ.get("SANDCLOUD_SIGNUP", "invite").strip().lower()  # open | invite | closed
if SANDCLOUD_SIGNUP not in {"open", "invite", "closed"}:
    raise ValueError(f"SANDCLOUD_SIGNUP must be open, invite or closed, not {SANDCLOUD_SIGNUP!r}")
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]  # e-mail optional: many labs have no mail
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_USERNAME_VALIDATORS = "accounts.signup.username_validators"
ACCOUNT_USERNAME_MIN_LENGTH = 2
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False

# Mail: the console by default, so `make run` prints a password-reset link in its log; SANDCLOUD_EMAIL_HOST sends it.
DEFAULT_FROM_EMAIL = os.environ.get("SANDCLOUD_EMAIL_FROM", "Sandcloud <sandcloud@localhost>")
EMAIL_HOST = os.environ.get("SANDCLOUD_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("SANDCLOUD_EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("SANDCLOUD_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("SANDCLOUD_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("SANDCLOUD_EMAIL_TLS", True)
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# Failed sign-ins (django-axes) are counted per username and address together: a learner who mistypes is paused alone,
# a classroom behind one NAT address is not, and nobody can lock a learner out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in before the password is checked
    "config.signin.UsernameAnyCaseBackend",  # Django's ModelBackend, whatever case the username is typed in
]
AXES_FAILURE_LIMIT = env_int("SANDCLOUD_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SANDCLOUD_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts during the pause do not extend it, so the time the page promises holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "config.signin.signin_client_address"
AXES_USERNAME_CALLABLE = "config.signin.signin_username"
AXES_LOCKOUT_CALLABLE = "config.signin.signin_lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not kept
AXES_VERBOSE = False  # no banner on every process start; lockouts are still logged

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
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# A message taken by a worker that died without acknowledging it (SIGKILL, OOM, power) goes back to the queue after
# the visibility timeout; it must exceed the longest task (300 s) plus any countdown, or a live worker's task runs twice.
# Lost starts and checks do not wait for it: the reaper finishes them long before.
_VISIBILITY_TIMEOUT = env_int("SANDCLOUD_BROKER_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    # Look for such messages a few times per timeout (kombu's default sweep runs only every 100 s).
    "unacked_restore_interval": max(1, min(60, _VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
    # Without these a publish to a Redis that vanished without closing the connection waits forever.
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = f"sandcloud-{INSTANCE}"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sandbox-reap": {"task": "sandbox.tasks.sandbox_reap_task", "schedule": env_float("SANDCLOUD_REAP_SECONDS", 20.0)},
    "sandbox-warm-pool": {"task": "sandbox.tasks.warm_pool_fill_task", "schedule": 10.0},
    # Finishes lost checks and re-queues lost step setups; labs/services.py says when one counts as lost.
    "labs-reap": {"task": "labs.tasks.attempts_reap_task", "schedule": 30.0},
    # Log retention, the per-account log storage cap and old empty streams (sandbox/logs/services.py).
    "logs-expire": {"task": "sandbox.logs.tasks.logs_expire_task", "schedule": 60.0},
    # Claims the learners' due EventBridge schedules and queues their firings (sandbox/scheduler/services.py).
    "scheduler-dispatch": {"task": "sandbox.scheduler.tasks.schedules_dispatch_task",
                           "schedule": env_float("SANDCLOUD_SCHEDULER_DISPATCH_SECONDS", 10.0)},
    # Freezes idle Lambda environments and removes long-idle ones; reconciles them with Docker (sandbox/functions).
    "functions-tend": {"task": "sandbox.functions.tasks.environments_tend_task",
                       "schedule": env_float("SANDCLOUD_FUNCTIONS_TEND_SECONDS", 2.0)},
    "functions-reconcile": {"task": "sandbox.functions.tasks.environments_reconcile_task", "schedule": 30.0},
    # Applies ECR lifecycle policies and the registry's garbage collection they and deletions ask for.
    "registry-tend": {"task": "sandbox.registry.tasks.registry_tend_task",
                      "schedule": env_float("SANDCLOUD_REGISTRY_TEND_SECONDS", 300.0)},
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
    # Every learner container runs under this one cgroup, shared by all installs on the host, whose hard limits hold
    # for all of them together (sandbox/engine/cgroups.py). 0 = the host's own figure: ¾ of its memory, all but half a
    # core, half of the kernel's pids. An empty name runs without the shared limit.
    "SANDBOXES_CGROUP": {
        "name": os.environ.get("SANDCLOUD_CGROUP_PARENT", "sandcloud"),
        "memory_mb": env_int("SANDCLOUD_SANDBOXES_MEMORY_MB", 0),
        "cpus": env_float("SANDCLOUD_SANDBOXES_CPUS", 0),
        "pids": env_int("SANDCLOUD_SANDBOXES_PIDS", 0),
    },
    # Sandboxes are admitted while their memory limits add up to at most this many times the cgroup's memory: an idle
    # sandbox uses about 6 MB of its 256, and if learners really fill theirs at once the kernel kills learner processes.
    "MEMORY_OVERCOMMIT": env_float("SANDCLOUD_MEMORY_OVERCOMMIT", 4.0),
    # The default workstation's pool never holds fewer than WARM_POOL_SIZE; each profile's pool grows with recent demand
    # (its busiest minute in the last 15) up to WARM_POOL_MAX, within WARM_POOL_MEMORY_PERCENT of the memory budget.
    # Class sessions reserve more on top (sandbox/pools). Each pass starts at most WARM_POOL_BATCH containers.
    "WARM_POOL_SIZE": env_int("SANDCLOUD_WARM_POOL_SIZE", 1),
    "WARM_POOL_MAX": env_int("SANDCLOUD_WARM_POOL_MAX", 6),
    "WARM_POOL_MEMORY_PERCENT": env_int("SANDCLOUD_WARM_POOL_MEMORY_PERCENT", 25),
    "WARM_POOL_BATCH": env_int("SANDCLOUD_WARM_POOL_BATCH", 3),
    # A class session's sandboxes are started over this many minutes before it begins (cohorts: class sessions).
    "CLASS_LEAD_MINUTES": env_int("SANDCLOUD_CLASS_LEAD_MINUTES", 10),
    # A provisioning sandbox older than this is considered abandoned by its worker.
    "PROVISION_STUCK_SECONDS": env_int("SANDCLOUD_PROVISION_STUCK_SECONDS", 120),
    # Containers younger than this are never treated as orphans (their database row may not be committed yet), and
    # warm claims younger than this are left to their own attach task.
    "ORPHAN_GRACE_SECONDS": env_int("SANDCLOUD_ORPHAN_GRACE_SECONDS", 30),
    "LOG_REPLAY_LINES": env_int("SANDCLOUD_LOG_REPLAY_LINES", 200),
    # WebSockets one user may have open at once in one web process (terminal, stream and dashboard sockets together).
    "SOCKETS_PER_USER": env_int("SANDCLOUD_SOCKETS_PER_USER", 8),
    # Terminal recordings: a session stops being written at SESSION_MAX_MB and a sandbox's recordings stop at MAX_MB;
    # a learner's and all learners' recordings make room for a new session by removing their oldest (a session being
    # written counts as a full one, so neither total overshoots). Kept this many days after the sandbox ends.
    "RECORDINGS_DIR": os.environ.get("SANDCLOUD_RECORDINGS_DIR", str(BASE_DIR / "var" / "recordings")),
    "RECORDING_SESSION_MAX_MB": env_float("SANDCLOUD_RECORDING_SESSION_MAX_MB", 8),
    "RECORDING_MAX_MB": env_int("SANDCLOUD_RECORDING_MAX_MB", 32),
    "RECORDING_LEARNER_MAX_MB": env_float("SANDCLOUD_RECORDING_LEARNER_MAX_MB", 256),
    "RECORDING_TOTAL_MAX_MB": env_float("SANDCLOUD_RECORDING_TOTAL_MAX_MB", 10240),
    "RECORDING_RETENTION_DAYS": env_int("SANDCLOUD_RECORDING_RETENTION_DAYS", 30),
    "EVENT_REPLAY": env_int("SANDCLOUD_EVENT_REPLAY", 100),
}

# --- The AWS endpoint (sandbox/awsapi) ----------------------------------------------------------------------------
# What `manage.py awscreds` and the keys page tell a learner to export. The endpoint is the edge path on this site.
SANDCLOUD_AWS_REGION = os.environ.get("SANDCLOUD_AWS_REGION", "us-east-1")
SANDCLOUD_AWS_ENDPOINT_URL = os.environ.get("SANDCLOUD_AWS_ENDPOINT_URL", "http://127.0.0.1:8000/aws")
# Sandboxes reach the endpoint at http://aws.sandcloud.internal:<port>/aws instead: a second daphne that serves only
# /aws (`manage.py awsedge`, config/edge_settings.py), listening on the host's address Docker calls host-gateway. The
# fence around sandbox networks (ops/firewall.sh) opens TCP to that address on SANDCLOUD_AWS_EDGE_PORTS and nothing
# else: room for one edge per install on the host (make run's, each test run's). This install's listens on _PORT.
SANDCLOUD_AWS_EDGE_PORT = env_int("SANDCLOUD_AWS_EDGE_PORT", 4566)
_first_port, _, _last_port = os.environ.get("SANDCLOUD_AWS_EDGE_PORTS", "4566-4581").strip().partition("-")
SANDCLOUD_AWS_EDGE_PORTS = (int(_first_port), int(_last_port or _first_port))  # first, last
if not 0 < SANDCLOUD_AWS_EDGE_PORTS[0] <= SANDCLOUD_AWS_EDGE_PORT <= SANDCLOUD_AWS_EDGE_PORTS[1] < 65536:
    raise ValueError(f"SANDCLOUD_AWS_EDGE_PORT ({SANDCLOUD_AWS_EDGE_PORT}) must lie in SANDCLOUD_AWS_EDGE_PORTS "
                     f"({'-'.join(map(str, SANDCLOUD_AWS_EDGE_PORTS))}), the ports ops/firewall.sh opens to sandboxes")
# The endpoint as sandboxes (workstations' ~/.aws/config, function environments) call it: the edge listener by the
# name every networked sandbox has in its /etc/hosts (sandbox/policy.py), and the edge's path (sandbox/awsapi/edge.py).
SANDCLOUD_AWS_SANDBOX_ENDPOINT_URL = f"http://{AWS_EDGE_HOST}:{SANDCLOUD_AWS_EDGE_PORT}/aws"
# The largest request body the edge reads (Lambda's own limit: a 50 MB zip, base64-encoded in CreateFunction's JSON).
SANDCLOUD_AWS_MAX_REQUEST_BYTES = env_int("SANDCLOUD_AWS_MAX_REQUEST_BYTES", 69_905_067)
# Secret access keys are stored encrypted (Fernet) with a key derived (HKDF) from this, else from SECRET_KEY; keys
# derived from SECRET_KEY and SECRET_KEY_FALLBACKS still decrypt, so setting this later keeps existing keys working.
# Replacing this value (or SECRET_KEY, with no fallback) makes the stored keys unusable: learners create new ones.
SANDCLOUD_AWS_KEY_ENCRYPTION_KEY = os.environ.get("SANDCLOUD_AWS_KEY_ENCRYPTION_KEY", "")

# --- CloudWatch Logs (sandbox/logs) -------------------------------------------------------------------------------
# Each account's log events are kept to this many MB (the expiry task deletes its oldest events first), and no event
# longer than this many days, whatever retention its group has ("Never expire" included).
SANDCLOUD_LOGS_MAX_MB_PER_ACCOUNT = env_float("SANDCLOUD_LOGS_MAX_MB_PER_ACCOUNT", 64)
SANDCLOUD_LOGS_MAX_DAYS = env_int("SANDCLOUD_LOGS_MAX_DAYS", 30)

# --- EventBridge Scheduler (sandbox/scheduler) --------------------------------------------------------------------
# Schedules one learner's account may hold, and how often Sandcloud fires one schedule at most (AWS allows once a
# minute; a larger figure refuses shorter rates and crons, and the dispatcher never fires a schedule sooner).
SANDCLOUD_SCHEDULES_PER_ACCOUNT = env_int("SANDCLOUD_SCHEDULES_PER_ACCOUNT", 20)
SANDCLOUD_SCHEDULE_MIN_INTERVAL_SECONDS = env_int("SANDCLOUD_SCHEDULE_MIN_INTERVAL_SECONDS", 60)

# Threads of each web process for AWS requests (sandbox/awsapi/asgi.py): synchronous invocations, which hold theirs
# while the function runs, and every other call.
SANDCLOUD_AWS_EDGE_THREADS = {"invoke": env_int("SANDCLOUD_AWS_INVOKE_THREADS", 200),
                              "api": env_int("SANDCLOUD_AWS_API_THREADS", 16)}

# --- Lambda functions (sandbox/functions) -------------------------------------------------------------------------
SANDCLOUD_FUNCTIONS = {
    "RUNTIME_IMAGE": os.environ.get("SANDCLOUD_LAMBDA_IMAGE", "sandcloud/lambda-python:3.11"),
    # Unpacked deployment packages, mounted read-only at /var/task (one tree per account and zip).
    "CODE_DIR": os.environ.get("SANDCLOUD_FUNCTIONS_CODE_DIR", str(BASE_DIR / "var" / "functions" / "code")),
    # The init phase may take this long (AWS: 10 s), after which it fails as AWS reports it.
    "INIT_TIMEOUT_SECONDS": env_float("SANDCLOUD_FUNCTIONS_INIT_TIMEOUT_SECONDS", 10),
    # An idle environment is frozen (docker pause) after this long, and removed after IDLE_REMOVE_SECONDS.
    "FREEZE_AFTER_SECONDS": env_float("SANDCLOUD_FUNCTIONS_FREEZE_AFTER_SECONDS", 2),
    "IDLE_REMOVE_SECONDS": env_int("SANDCLOUD_FUNCTIONS_IDLE_REMOVE_SECONDS", 600),
    # Concurrent executions per learner (AWS's account limit is 1,000; a class shares one machine).
    "CONCURRENCY_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_CONCURRENCY", 10),
    "FUNCTIONS_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_PER_LEARNER", 50),
    # The memory limits one learner's environments may hold at once (provisioned ones included).
    "MEMORY_MB_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_MEMORY_MB_PER_LEARNER", 8192),
    "CODE_MB_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_CODE_MB_PER_LEARNER", 500),
    # Environments (running containers) per learner and per host; host memory is admitted with the sandboxes'.
    "ENVIRONMENTS_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_ENVIRONMENTS_PER_LEARNER", 12),
    "ENVIRONMENTS_PER_HOST": env_int("SANDCLOUD_FUNCTIONS_ENVIRONMENTS_PER_HOST", 400),
    # The largest /tmp a function may ask for (AWS allows 10,240 MB; /tmp is memory-backed here).
    "MAX_EPHEMERAL_MB": env_int("SANDCLOUD_FUNCTIONS_MAX_EPHEMERAL_MB", 1024),
    # One invocation's log is kept up to this many bytes (the rest is counted and dropped).
    "LOG_BYTES_PER_INVOCATION": env_int("SANDCLOUD_FUNCTIONS_LOG_BYTES", 1024 * 1024),
    "INVOCATIONS_KEPT": env_int("SANDCLOUD_FUNCTIONS_INVOCATIONS_KEPT", 1000),
    # Event invocations one learner may have waiting at once (each holds up to 1 MB of payload until it runs).
    "ASYNC_QUEUED_PER_LEARNER": env_int("SANDCLOUD_FUNCTIONS_ASYNC_QUEUED", 100),
    # Async invocations: retried twice after a function error, waiting these seconds (AWS: about 1 and 2 minutes).
    "ASYNC_RETRY_DELAYS": [int(s) for s in os.environ.get("SANDCLOUD_FUNCTIONS_ASYNC_RETRY_DELAYS", "60,120").split(",")],
}

# --- ECR (sandbox/registry) ---------------------------------------------------------------------------------------
SANDCLOUD_REGISTRY = {
    # The ECR API on the edge endpoint; `make run` runs the registry beside the site (ops/Procfile).
    "ENABLED": env_bool("SANDCLOUD_REGISTRY_ENABLED", True),
    # The registry's front (sandbox/registry/front.py) listens on 127.0.0.1:<PORT>, the address Docker pushes to;
    # repositories are <host:port>/<account id>/<name>. docker-registry itself listens on a free loopback port.
    "PORT": env_int("SANDCLOUD_REGISTRY_PORT", 5000),
    # Its signing key and certificate (keys/), its config and its storage (storage/) live here.
    "DIR": os.environ.get("SANDCLOUD_REGISTRY_DIR", str(BASE_DIR / "var" / "registry")),
    # Where the registry sends clients for a bearer token: this site's token view (sandbox/registry/views.py).
    "TOKEN_URL": os.environ.get("SANDCLOUD_REGISTRY_TOKEN_URL", "http://127.0.0.1:8000/registry/token"),
    # What one learner's repositories may hold together (distinct layers and configs); uploads past it are refused.
    "QUOTA_MB": env_int("SANDCLOUD_REGISTRY_QUOTA_MB", 2048),
    # How often beat applies lifecycle policies and runs a garbage collection that deletions asked for.
    "TEND_SECONDS": env_float("SANDCLOUD_REGISTRY_TEND_SECONDS", 300.0),
    # A collection waits this long for pushes under way to finish (new ones wait meanwhile), else it is postponed.
    "GC_DRAIN_SECONDS": env_float("SANDCLOUD_REGISTRY_GC_DRAIN_SECONDS", 60.0),
    # A push with no request for this long is taken as abandoned (its unreferenced layers may then be collected).
    "PUSH_IDLE_SECONDS": env_float("SANDCLOUD_REGISTRY_PUSH_IDLE_SECONDS", 30.0),
}

# --- The learner's own Docker (sandbox/dockerproxy) ---------------------------------------------------------------
SANDCLOUD_DOCKER_PROXY = {
    "ENABLED": env_bool("SANDCLOUD_DOCKER_PROXY_ENABLED", True),
    # One directory per workstation uid holds its socket; each is mounted read-only into that uid's workstation.
    "DIR": os.environ.get("SANDCLOUD_DOCKER_PROXY_DIR", str(BASE_DIR / "var" / "dockerproxy" / INSTANCE)),
    "ENGINE_SOCKET": os.environ.get("SANDCLOUD_DOCKER_PROXY_ENGINE", "/var/run/docker.sock"),
    # Inside the workstation: DOCKER_HOST points here (the directory is mounted at /run/sandcloud/docker).
    "MOUNT": "/run/sandcloud/docker",
    # Images every learner may run and build FROM, read-only.
    "SHARED_IMAGES": [s for s in os.environ.get("SANDCLOUD_DOCKER_SHARED_IMAGES", "sandcloud/python:3.11").split(",")
                      if s],
    # Per learner: containers at once, their memory limits in total, one container's memory and CPU, and the disk
    # their images take.
    "MAX_CONTAINERS": env_int("SANDCLOUD_DOCKER_MAX_CONTAINERS", 5),
    "MEMORY_MB": env_int("SANDCLOUD_DOCKER_MEMORY_MB", 512),
    "CONTAINER_MEMORY_MB": env_int("SANDCLOUD_DOCKER_CONTAINER_MEMORY_MB", 256),
    "CPUS": env_float("SANDCLOUD_DOCKER_CPUS", 0.5),
    "IMAGE_STORAGE_MB": env_int("SANDCLOUD_DOCKER_IMAGE_STORAGE_MB", 1024),
    # Named volumes: at most this many, each a filesystem of its own of this size (sandbox/dockerproxy/volumes.py).
    "MAX_VOLUMES": env_int("SANDCLOUD_DOCKER_MAX_VOLUMES", 3),
    "VOLUME_MB": env_int("SANDCLOUD_DOCKER_VOLUME_MB", 256),
    # Request bounds: a JSON body, a build context (and what it unpacks to), a `docker cp` archive.
    "MAX_JSON_BYTES": env_int("SANDCLOUD_DOCKER_MAX_JSON_BYTES", 1024 * 1024),
    "BUILD_CONTEXT_MB": env_int("SANDCLOUD_DOCKER_BUILD_CONTEXT_MB", 50),
    "ARCHIVE_MB": env_int("SANDCLOUD_DOCKER_ARCHIVE_MB", 64),
    # Connections one learner may hold open at once (logs -f, attach, events each hold one), and builds host-wide.
    "MAX_CONNECTIONS": env_int("SANDCLOUD_DOCKER_MAX_CONNECTIONS", 32),
    "BUILDS_AT_ONCE": env_int("SANDCLOUD_DOCKER_BUILDS_AT_ONCE", 2),
    "GID": 20000,
}
