"""Studio settings: every value comes from the environment, every default works on a laptop.

Production is a matter of setting variables: DEBUG=0, SECRET_KEY, STUDIO_ENCRYPTION_KEYS,
ALLOWED_HOSTS, and optionally DATABASE_URL and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from studio.core.devsecrets import load_dev_secrets

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def redis_url_with_timeouts(url, *, connect, reply):
    """The URL with redis-py's socket timeouts added, where it does not set them itself."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_connect_timeout", str(connect))
    query.setdefault("socket_timeout", str(reply))
    return parts._replace(query=urlencode(query)).geturl()


DEBUG = env_bool("DEBUG", True)

# Everything the studio writes (SQLite file, uploads, videos, development secrets) lives here.
DATA_DIR = Path(env_str("STUDIO_DATA_DIR", str(BASE_DIR / "var"))).resolve()
MEDIA_ROOT = Path(env_str("STUDIO_MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"

SECRET_KEY = env_str("SECRET_KEY")
STUDIO_ENCRYPTION_KEYS = env_list("STUDIO_ENCRYPTION_KEYS")
# Secrets not given are generated into DATA_DIR (outside git, kept across restarts) on a laptop (DEBUG) and for
# `make run`, which serves with DEBUG off and asks for them with STUDIO_LOCAL_SECRETS=1. Anywhere else, DEBUG off
# means production: it sets its own and refuses to start without them.
STUDIO_LOCAL_SECRETS = env_bool("STUDIO_LOCAL_SECRETS", DEBUG)
if not STUDIO_LOCAL_SECRETS:
    missing = [n for n, v in [("SECRET_KEY", SECRET_KEY), ("STUDIO_ENCRYPTION_KEYS", STUDIO_ENCRYPTION_KEYS)] if not v]
    if missing:
        raise ImproperlyConfigured(
            f"DEBUG is off, so {' and '.join(missing)} must be set in the environment "
            "(see README: Production)."
        )
else:
    dev_secrets = load_dev_secrets(DATA_DIR)
    SECRET_KEY = SECRET_KEY or dev_secrets["secret_key"]
    STUDIO_ENCRYPTION_KEYS = STUDIO_ENCRYPTION_KEYS or [dev_secrets["encryption_key"]]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "studio.core",
    "studio.accounts",
    "studio.projects",
    "studio.providers",
    "studio.jobs",
    "studio.review",
    "studio.sandbox",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "template_partials",
    "django_htmx",
    "django_q",
    "csp",
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
    "csp.middleware.CSPMiddleware",
    "studio.core.middleware.HtmxLoginRedirectMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

# Fields in one request (query parameters, or a form's fields). The studio's largest form, the composer with
# every model of every provider chosen, sends under 100, and about 200 if every model needs its own values;
# the gallery sends a dozen. More is answered with a plain 400 that says so (studio.core.params, before CSRF
# reads the form), also with DEBUG on, where Django's error page would read the fields again and answer a 500.
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("STUDIO_MAX_REQUEST_FIELDS", 1000)
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.csrf.CsrfViewMiddleware"),
                  "studio.core.params.FieldLimitMiddleware")

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# SQLite is tuned so the web server and the task cluster can write at once: WAL lets readers go on
# while one writes, IMMEDIATE takes the write lock at BEGIN (so a transaction never fails halfway
# when it upgrades from read to write), and the busy timeout makes writers queue instead of failing.
SQLITE_TIMEOUT_SECONDS = env_int("STUDIO_SQLITE_TIMEOUT", 30)
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("STUDIO_SQLITE_PATH", str(DATA_DIR / "studio.sqlite3")),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": SQLITE_TIMEOUT_SECONDS,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    f"PRAGMA busy_timeout={SQLITE_TIMEOUT_SECONDS * 1000};"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
            # Connections are kept (per thread) rather than opened for every request or poll: opening one
            # runs the PRAGMAs above, a quarter of a poll's cost when it was done every time.
            "CONN_MAX_AGE": env_int("STUDIO_DB_CONN_MAX_AGE", 600),
            # A file (not memory) so tests can share it with threads and subprocesses; one per test run, so
            # two runs at once never destroy each other's database.
            "TEST": {"NAME": env_str("STUDIO_SQLITE_TEST_PATH", str(DATA_DIR / f"test-studio-{os.getpid()}.sqlite3"))},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project_list"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STUDIO_STATIC_ROOT", str(DATA_DIR / "staticfiles")))
if DEBUG:
    # WhiteNoise serves straight from the app and project static folders while developing.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Files (uploads, videos, posters) are kept in the media folder (STUDIO_MEDIA_ROOT; machines share it by mounting
# one folder) or, with STUDIO_S3_BUCKET, in an S3 or S3-compatible bucket through django-storages. Credentials come
# from boto3's usual places (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an instance role, ~/.aws); objects are
# private and members get signed links that expire after STUDIO_S3_LINK_SECONDS. See studio/core/media_store.py.
STUDIO_S3_BUCKET = env_str("STUDIO_S3_BUCKET")
STUDIO_S3_ENDPOINT_URL = env_str("STUDIO_S3_ENDPOINT_URL")  # e.g. a MinIO or Ceph gateway; empty for AWS
STUDIO_S3_REGION = env_str("STUDIO_S3_REGION", "us-east-1")
FILE_STORAGE = (
    {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": STUDIO_S3_BUCKET,
        "endpoint_url": STUDIO_S3_ENDPOINT_URL or None,
        "region_name": STUDIO_S3_REGION,
        # A self-hosted endpoint names the bucket in the path; AWS in the host name.
        "addressing_style": "path" if STUDIO_S3_ENDPOINT_URL else "virtual",
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env_int("STUDIO_S3_LINK_SECONDS", 3600),
        "file_overwrite": True,
    }}
    if STUDIO_S3_BUCKET
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)
# Where signed links point: pages may show videos and images from there (Content-Security-Policy below).
FILE_STORAGE_ORIGIN = (
    (lambda url: f"{url.scheme}://{url.netloc}")(urlsplit(STUDIO_S3_ENDPOINT_URL)) if STUDIO_S3_ENDPOINT_URL
    else f"https://{STUDIO_S3_BUCKET}.s3.{STUDIO_S3_REGION}.amazonaws.com" if STUDIO_S3_BUCKET else None
)
STORAGES = {
    "default": FILE_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# The studio's own address: providers fetch the images it hands them and send callbacks there, and its scheme
# decides the security below. Unset in production, it is https on the first name in ALLOWED_HOSTS; a staging
# host on plain HTTP says so (e.g. http://staging.lan:8000) and then signs in over HTTP.
def default_public_url():
    if DEBUG:
        return "http://127.0.0.1:8000"
    names = [host for host in ALLOWED_HOSTS if host != "*" and not host.startswith(".")]
    return f"https://{names[0] if names else 'localhost'}"


STUDIO_PUBLIC_URL = env_str("STUDIO_PUBLIC_URL") or default_public_url()

# Security. Secure cookies, HSTS and the redirect to https only where the studio is served over https (and never
# with DEBUG on, whose http://127.0.0.1 must keep signing in whatever the public address is). Behind a
# TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_ENABLED=1.
SERVED_OVER_HTTPS = urlsplit(STUDIO_PUBLIC_URL).scheme == "https" and not DEBUG
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SERVED_OVER_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SERVED_OVER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SERVED_OVER_HTTPS
SECURE_HSTS_PRELOAD = SERVED_OVER_HTTPS
if env_bool("SECURE_PROXY_SSL_HEADER_ENABLED", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# The web server: gunicorn with deploy/gunicorn.conf.py (what `make run` starts), threaded workers. A thread waits
# on one slow client (a video being watched holds one for as long as it downloads) and pages run in the others;
# two processes use both cores of a small machine. 2 x 16 leaves pages threads to spare with 10 videos playing.
STUDIO_WEB_WORKERS = env_int("STUDIO_WEB_WORKERS", 2)
STUDIO_WEB_THREADS = env_int("STUDIO_WEB_THREADS", 16)

# How members' media leaves the studio once their access is checked: "none" sends it from the web process (the
# kernel does, with sendfile, under gunicorn); "x-accel-redirect" hands it to nginx (deploy/nginx/), "x-sendfile"
# to Apache's mod_xsendfile or lighttpd, which then answer ranges and 304s themselves and hold no web thread.
STUDIO_MEDIA_HANDOFF = env_str("STUDIO_MEDIA_HANDOFF", "none")
if STUDIO_MEDIA_HANDOFF not in {"none", "x-accel-redirect", "x-sendfile"}:
    raise ImproperlyConfigured("STUDIO_MEDIA_HANDOFF must be none, x-accel-redirect or x-sendfile.")

# htmx 2 is configured (meta htmx-config) not to inject inline styles or use eval, so the policy
# needs no 'unsafe-inline' or 'unsafe-eval'. Videos and posters come from the studio itself.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:", *filter(None, [FILE_STORAGE_ORIGIN])],
        "media-src": [SELF, "blob:", *filter(None, [FILE_STORAGE_ORIGIN])],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# django-q2. Jobs keep their own state in the database; the queue only carries ids. `retry` must
# exceed `timeout` by a margin or a slow task would be handed to a second worker while it still runs.
Q_TIMEOUT_SECONDS = env_int("STUDIO_Q_TIMEOUT", 300)
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    # The queue's name (the Redis keys' prefix, and the salt of signed tasks): studios sharing one Redis each
    # need their own; tests use one per test run.
    "name": env_str("STUDIO_Q_NAME", "studio"),
    "workers": env_int("STUDIO_Q_WORKERS", 4),
    "timeout": Q_TIMEOUT_SECONDS,
    "retry": Q_TIMEOUT_SECONDS + 60,
    "max_attempts": env_int("STUDIO_Q_MAX_ATTEMPTS", 3),
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "label": "Task queue",
    "sync": env_bool("STUDIO_Q_SYNC", False),
}
if REDIS_URL:
    # A Redis that is down or unreachable must not hold a worker for the system's connect timeout (minutes):
    # connects give up after 2 s and replies after 10 s (django-q2 waits at most 1 s for a task), unless the
    # URL says otherwise. Nothing a person does waits on Redis: jobs are sent from the database.
    Q_CLUSTER["redis"] = redis_url_with_timeouts(REDIS_URL, connect=2, reply=10)
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

DEFAULT_EXCEPTION_REPORTER_FILTER = "studio.core.redaction.RedactingExceptionReporterFilter"

# Logs go to stderr: plain text, or with STUDIO_LOG_FORMAT=json one JSON object per line (time, level, logger,
# message, and job, account and provider when a line is about a job: studio.core.logs). Django's and django-q2's
# loggers write through the same handler; uncaught exceptions are logged too (LOGGING_CONFIG), so every line
# has the format. Provider calls are logged at DEBUG, a job that ends failed or ambiguous at WARNING.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("STUDIO_LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"STUDIO_LOG_FORMAT is {LOG_FORMAT!r}; it must be plain or json.")
LOGGING_CONFIG = "studio.core.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "studio.core.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "studio.core.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "studio.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's defaults give these their own handlers: their lines would come twice, and not as JSON.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Sign-in throttling (django-axes), on the studio's sign-in page and the admin's alike. 10 failed sign-ins
# lock the account (whatever addresses they came from) and the address (whatever accounts it tried) for 15
# minutes: room for a person's typos, while a guesser gets 10 tries a quarter of an hour instead of
# thousands. Sign-ins tried while locked are refused without checking the password and do not extend the
# lock, so the page can say when to come back; a successful sign-in does not clear the count (a guesser with
# an account of their own would clear their address's). Failures are rows in the database, shared by every
# worker; `manage.py axes_reset_username NAME` (or axes_reset_ip ADDRESS) or the admin's Access attempts
# lift a lock at once. The address is the peer's own: behind reverse proxies set STUDIO_TRUSTED_PROXY_COUNT
# to how many of them append to X-Forwarded-For (until then the header, which anyone can send, is ignored).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last: it turns a locked sign-in's answer into our page
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env_int("STUDIO_SIGNIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STUDIO_SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "studio.accounts.signin.client_address"
AXES_USERNAME_CALLABLE = "studio.accounts.signin.attempted_username"
AXES_LOCKOUT_CALLABLE = "studio.accounts.signin.locked_out"
STUDIO_TRUSTED_PROXY_COUNT = env_int("STUDIO_TRUSTED_PROXY_COUNT", 0)
# Every refused sign-in is logged by studio.signin with the account and address; axes' own lines mask both,
# and at INFO it writes two for every sign-in.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# Uploads are capped while they arrive (studio/core/uploads.py): every file is written to a temporary file
# as it comes (a whole request under FILE_UPLOAD_MAX_MEMORY_SIZE stays in memory), dropped at the chunk that
# takes it past STUDIO_MAX_IMAGE_BYTES, and files past STUDIO_MAX_UPLOAD_FILES in one request are not taken;
# the composer says which and why. Temporary files go to the system's temporary folder (TMPDIR). Form fields
# other than files may hold 1 MiB in all.
FILE_UPLOAD_HANDLERS = ["studio.core.uploads.UploadLimitHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
STUDIO_MAX_UPLOAD_FILES = env_int("STUDIO_MAX_UPLOAD_FILES", 8)

# Where `make run` starts the provider sandbox; the demo's sandbox accounts point here.
STUDIO_SANDBOX_URL = env_str("STUDIO_SANDBOX_URL", "http://127.0.0.1:8001")

# How long a signed image link (under STUDIO_PUBLIC_URL, set with the security settings) lives.
STUDIO_IMAGE_LINK_SECONDS = env_int("STUDIO_IMAGE_LINK_SECONDS", 24 * 3600)

# Talking to providers, and keeping what they deliver.
STUDIO_PROVIDER_CONNECT_TIMEOUT = float(env_str("STUDIO_PROVIDER_CONNECT_TIMEOUT", "5"))
STUDIO_PROVIDER_READ_TIMEOUT = float(env_str("STUDIO_PROVIDER_READ_TIMEOUT", "30"))
# Total time limits of one call (connect, send, every read) and the largest answer read at all.
STUDIO_PROVIDER_CALL_SECONDS = float(env_str("STUDIO_PROVIDER_CALL_SECONDS", "30"))
STUDIO_PROVIDER_SUBMIT_SECONDS = float(env_str("STUDIO_PROVIDER_SUBMIT_SECONDS", "60"))
STUDIO_PROVIDER_MAX_ANSWER_BYTES = env_int("STUDIO_PROVIDER_MAX_ANSWER_BYTES", 1024 * 1024)
STUDIO_MAX_IMAGE_BYTES = env_int("STUDIO_MAX_IMAGE_BYTES", 20 * 1024**2)
STUDIO_MAX_IMAGE_PIXELS = env_int("STUDIO_MAX_IMAGE_PIXELS", 40_000_000)
STUDIO_MAX_VIDEO_BYTES = env_int("STUDIO_MAX_VIDEO_BYTES", 2 * 1024**3)
# A download gets a grace period for its first bytes, must then keep up a minimum average rate, and never
# runs longer than the cap.
STUDIO_DOWNLOAD_GRACE_SECONDS = float(env_str("STUDIO_DOWNLOAD_GRACE_SECONDS", "30"))
STUDIO_DOWNLOAD_MIN_RATE = env_int("STUDIO_DOWNLOAD_MIN_RATE", 64 * 1024)
STUDIO_DOWNLOAD_MAX_SECONDS = float(env_str("STUDIO_DOWNLOAD_MAX_SECONDS", "1800"))
# The poller (run by `manage.py qcluster`): threads per cluster, and how long a job is held by one poller
# (renewed while a download runs; after a crash, others take the job once it expires).
STUDIO_POLL_THREADS = env_int("STUDIO_POLL_THREADS", 16)
STUDIO_LEASE_SECONDS = float(env_str("STUDIO_LEASE_SECONDS", "60"))
# When a step fails: exponential backoff from the base up to the cap (with jitter); the same failure this
# many times in a row ends the job with its reason. A job not sent this many hours after creation fails.
STUDIO_BACKOFF_BASE_SECONDS = float(env_str("STUDIO_BACKOFF_BASE_SECONDS", "5"))
STUDIO_BACKOFF_MAX_SECONDS = float(env_str("STUDIO_BACKOFF_MAX_SECONDS", "600"))
STUDIO_FAILURE_LIMIT = env_int("STUDIO_FAILURE_LIMIT", 8)
STUDIO_QUEUE_HOURS = env_int("STUDIO_QUEUE_HOURS", 6)
# An account whose calls fail this many times in a row (timeouts, 5xx, unreadable answers) is paused for the
# cooling period; then one probe call decides whether it resumes.
STUDIO_BREAKER_FAILURES = env_int("STUDIO_BREAKER_FAILURES", 5)
STUDIO_BREAKER_COOLING_SECONDS = float(env_str("STUDIO_BREAKER_COOLING_SECONDS", "60"))
# On SIGTERM the poller abandons polls and downloads at once, and gives submissions in flight this long to
# get their answer (after that they would be ambiguous); `qcluster` waits at most 5 s for the poller.
STUDIO_STOP_GRACE_SECONDS = float(env_str("STUDIO_STOP_GRACE_SECONDS", "4"))
# django-q2's workers run at this nice level: their CPU work (probes, posters) yields to the poller.
STUDIO_WORKER_NICE = env_int("STUDIO_WORKER_NICE", 10)
# Downloads refuse private and loopback addresses except these hosts, networks or host:port pairs (in
# development, the sandbox's own host and port, not all of loopback).
STUDIO_DOWNLOAD_ALLOW_HOSTS = env_list(
    "STUDIO_DOWNLOAD_ALLOW_HOSTS", [urlsplit(STUDIO_SANDBOX_URL).netloc] if DEBUG else []
)

# Health. /healthz (no sign-in, answered before host checks and the HTTPS redirect: load balancers probe each
# server by its address) checks the database, the media folder and the task broker, the broker's ping waiting
# at most STUDIO_HEALTH_BROKER_SECONDS. Each `qcluster` writes a heartbeat every STUDIO_HEARTBEAT_SECONDS and
# shows as dead once its last one is STUDIO_CLUSTER_STALE_SECONDS old; jobs due for STUDIO_OVERDUE_SECONDS that
# no worker holds are overdue (no poller is taking them). `manage.py health` and the admin show all of it.
MIDDLEWARE.insert(0, "studio.core.health.HealthzMiddleware")
STUDIO_HEALTH_BROKER_SECONDS = float(env_str("STUDIO_HEALTH_BROKER_SECONDS", "2"))
STUDIO_HEARTBEAT_SECONDS = float(env_str("STUDIO_HEARTBEAT_SECONDS", "5"))
STUDIO_CLUSTER_STALE_SECONDS = float(env_str("STUDIO_CLUSTER_STALE_SECONDS", "30"))
STUDIO_OVERDUE_SECONDS = float(env_str("STUDIO_OVERDUE_SECONDS", "60"))
