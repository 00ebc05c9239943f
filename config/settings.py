"""Concord settings: everything comes from the environment (see README, "Configuration")."""

import os
import secrets
from pathlib import Path

from config.env import as_bool, as_int_or_none, as_list, broker_config, database_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONCORD_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = as_bool(os.environ.get("DEBUG"), default=False)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off.")
    # Local use: generate one key once and keep it, so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = as_list(
    os.environ.get("ALLOWED_HOSTS"), ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = as_list(os.environ.get("CSRF_TRUSTED_ORIGINS"), [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "labeling",
    "analysis",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
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
WSGI_APPLICATION = "config.wsgi.application"

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

# Behind PgBouncer in transaction mode: CONCORD_DB_TRANSACTION_POOLING=1, and
# CONCORD_DB_PREPARE_THRESHOLD=none unless PgBouncer >= 1.22 keeps prepared statements
# (`max_prepared_statements` > 0). See README, "Deployment with docker compose".
DATABASES = {
    "default": database_config(
        os.environ.get("DATABASE_URL"),
        var_dir=VAR_DIR,
        transaction_pooling=as_bool(os.environ.get("CONCORD_DB_TRANSACTION_POOLING")),
        prepare_threshold=as_int_or_none(os.environ.get("CONCORD_DB_PREPARE_THRESHOLD"), 5),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing root in development
# Plotly's JavaScript is served from the installed package, never a CDN.
STATICFILES_DIRS = [("plotly", Path(__import__("plotly").__file__).parent / "package_data")]
# Collected static files (production: the Dockerfile runs collectstatic; `make run` runs it and
# sets CONCORD_STATIC_COLLECTED=1) have hashed names and gzip copies: WhiteNoise serves them
# compressed and cacheable for good. Uncollected (tests, a bare runserver), files come from the
# apps' folders as they are.
CONCORD_STATIC_COLLECTED = as_bool(os.environ.get("CONCORD_STATIC_COLLECTED"), default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "config.static_files.HashedStaticFilesStorage"
        if CONCORD_STATIC_COLLECTED
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not CONCORD_STATIC_COLLECTED

# Uploads: big files stream to a temporary file; the import service enforces its own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
CONCORD_MAX_UPLOAD_BYTES = int(os.environ.get("CONCORD_MAX_UPLOAD_BYTES", 512 * 1024 * 1024))
# Imports above this size run as a Celery job; fields above this many characters are refused.
CONCORD_IMPORT_ASYNC_BYTES = int(os.environ.get("CONCORD_IMPORT_ASYNC_BYTES", 5 * 1024 * 1024))
CONCORD_IMPORT_MAX_FIELD_CHARS = int(os.environ.get("CONCORD_IMPORT_MAX_FIELD_CHARS", 100_000))
CONCORD_LEASE_SECONDS = int(os.environ.get("CONCORD_LEASE_SECONDS", 600))
# Redis gives the job of a lost worker (killed, its machine gone) to another worker this many
# seconds after it was taken. It must exceed the longest job (or a live worker's job is started
# a second time: wasted, though only one result is kept) and the longest webhook retry delay.
CONCORD_BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("CONCORD_BROKER_VISIBILITY_TIMEOUT", 3600))
# A run still `running` this long after its last start is failed by the watchdog. Longer than
# the visibility timeout, so a lost worker's run is retried elsewhere rather than failed.
CONCORD_RUN_TIMEOUT_SECONDS = int(
    os.environ.get("CONCORD_RUN_TIMEOUT_SECONDS", 2 * CONCORD_BROKER_VISIBILITY_TIMEOUT)
)
# Webhooks (README, "Webhooks"): URLs resolving to private or loopback addresses are refused
# unless allowed; failed deliveries are retried after these delays (seconds), then given up.
# The longest delay stays under the broker's visibility timeout, or the message would come twice.
CONCORD_WEBHOOKS_ALLOW_PRIVATE = as_bool(os.environ.get("CONCORD_WEBHOOKS_ALLOW_PRIVATE"))
CONCORD_WEBHOOK_RETRY_DELAYS = [
    float(s)
    for s in as_list(os.environ.get("CONCORD_WEBHOOK_RETRY_DELAYS"), ["10", "60", "300", "1800"])
]
CONCORD_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("CONCORD_WEBHOOK_TIMEOUT_SECONDS", 10))
CONCORD_WEBHOOK_LOG_KEEP = int(os.environ.get("CONCORD_WEBHOOK_LOG_KEEP", 500))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "labeling.api.authentication.FastTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "labeling.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "labeling.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "labeling.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("CONCORD_LOGIN_RATE", "10/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Concord API",
    "DESCRIPTION": "Label data and prove the labels are right.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind`/`format` field: give each choice set its own name.
    "ENUM_NAME_OVERRIDES": {
        "ImportKindEnum": "labeling.models.ImportBatch.Kind",
        "ImportFormatEnum": "labeling.importing.parsers.FORMAT_CHOICES",
        "RunKindEnum": "analysis.models.AnalysisRun.Kind",
        "WebhookDeliveryStatusEnum": "labeling.models.WebhookDelivery.Status",
        # The name it had before a second `status` choice set existed.
        "StatusEnum": "analysis.models.AnalysisRun.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.document_error_responses",
    ],
}

# Celery: runs are tracked in the database, so no result backend is needed.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_config(
    os.environ.get("CELERY_BROKER_URL"),
    var_dir=VAR_DIR,
    visibility_timeout=CONCORD_BROKER_VISIBILITY_TIMEOUT,
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}

# One cache shared by every web process (login throttling, API throttles): Redis when the
# broker is Redis, else files under var/.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CELERY_BROKER_URL,
            "KEY_PREFIX": "concord",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CONCORD_LOGIN_ATTEMPTS = int(os.environ.get("CONCORD_LOGIN_ATTEMPTS", 10))
CONCORD_LOGIN_WINDOW_SECONDS = int(os.environ.get("CONCORD_LOGIN_WINDOW_SECONDS", 300))

# Security: safe by default; production behind TLS passes `manage.py check --deploy`.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-free meta tag instead
if not DEBUG:
    SECURE_SSL_REDIRECT = as_bool(os.environ.get("CONCORD_SSL_REDIRECT"), default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("CONCORD_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CONCORD_LOG_LEVEL", "WARNING")},
}
