"""Caravan's one settings module, driven by the environment (docs/configuration.md lists it all).

Tests, `make run` and production read the same file; only environment variables differ.
"""
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parents[2]

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. `make run` and `make test` generate one in var/; "
        "elsewhere set SECRET_KEY (or SECRET_KEY_FILE)."
    )

# Agencies live at <slug>.<PLATFORM_DOMAIN>; the operator console at PLATFORM_DOMAIN itself.
PLATFORM_DOMAIN = env_str("PLATFORM_DOMAIN", "localhost")
PLATFORM_SCHEME = env_str("PLATFORM_SCHEME", "http")
# Reverse proxies in front of gunicorn that append to X-Forwarded-For (0: clients connect directly).
PROXY_COUNT = env_int("PROXY_COUNT", 0)
PLATFORM_PORT = env_str("PLATFORM_PORT", "8000")  # shown in links; blank behind a proxy on 80/443
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f".{PLATFORM_DOMAIN},{PLATFORM_DOMAIN}")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Apps -------------------------------------------------------------------------------------
# Shared apps have their tables in the public schema; tenant apps get a copy per agency schema.
# auth, sessions, accounts and tokens are on both sides: operators in public, staff per agency.
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "tenants.portability",  # export, restore and deletion of agencies (docs/portability.md)
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "caravan",
    "accounts",
    "console",
    "billing",
    "integrations",
    "integrations.credentials",  # also a tenant app: each feed's secrets live in its owner's schema
    "tenants.jobs",  # label agency_jobs: when each periodic agency job next has work
    "frontend",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework.authtoken",
    "accounts",
    "crm",
    "crm.pipeline",
    "crm.trips",
    "crm.care",
    "crm.policies",
    "crm.tiers",
    "crm.visits",
    "crm.value",
    "crm.segments",
    "crm.campaigns",
    "crm.loyalty",
    "integrations.credentials",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
# crm is a tenant app but its pages live in frontend/ and its API in crm/api.py.

TENANT_MODEL = "tenants.Agency"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "caravan.urls_public"
ROOT_URLCONF = "caravan.urls_tenant"
# Switch search_path once per request/task, not before every cursor.
TENANT_LIMIT_SET_CALLS = True
# New agencies are made from the migrated template schema (its snapshot or a pooled copy: tenants/schemas.py).
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_BASE_SCHEMA = "agency_template"
# Agency schemas made ahead of time from the template snapshot; onboarding renames one (0: none).
SCHEMA_POOL_SIZE = env_int("SCHEMA_POOL_SIZE", 2)
# The pg_dump that snapshots the template (tenants/schemas.py); found on the PATH etc. when empty.
PG_DUMP = env_str("PG_DUMP", "")
TENANT_MIGRATION_EXECUTOR = env_str("TENANT_MIGRATION_EXECUTOR", "multiprocessing")
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("TENANT_MIGRATION_PROCESSES", 4)
TENANT_MULTIPROCESSING_CHUNKS = 2
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics on any host; request id, log context and HTTP metrics (caravan.metrics).
    "caravan.metrics.ObservabilityMiddleware",
    "caravan.tenancy.middleware.AgencyMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "caravan.tenancy.middleware.AgencyContextMiddleware",
    "caravan.tenancy.middleware.ReadOnlyAgencyMiddleware",
    # NUL bytes in the path, query or form: a 400 naming the field, never a 500 (caravan.input).
    "caravan.input.RejectNulMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.shell",
            ],
        },
    }
]
WSGI_APPLICATION = "caravan.wsgi.application"

# --- Data stores ------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
if not DATABASE_URL or not REDIS_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL and REDIS_URL must be set. `make run` / `make test` start embedded "
        "PostgreSQL and Redis and set them for you."
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# Behind PgBouncer in transaction-pooling mode every statement must carry the agency's search_path
# (caravan/db/base.py); "session" (direct PostgreSQL or PgBouncer session mode) keeps django-tenants' own.
DATABASE_POOLING = env_str("DATABASE_POOLING", "session")
if DATABASE_POOLING not in ("session", "transaction"):
    raise ImproperlyConfigured("DATABASE_POOLING must be 'session' or 'transaction'.")
if DATABASE_POOLING == "transaction":
    DATABASES["default"]["ENGINE"] = "caravan.db"
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# Read-heavy reports marked @replica_report read a streaming replica when one is given (caravan/db/replica.py).
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60)),
        "ENGINE": DATABASES["default"]["ENGINE"],
        "CONN_HEALTH_CHECKS": True,
        "DISABLE_SERVER_SIDE_CURSORS": DATABASE_POOLING == "transaction",
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = [*DATABASE_ROUTERS, "caravan.db.replica.ReplicaRouter"]
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key carries the schema of the agency it was written under.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "caravan"),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"  # per schema: a session cannot cross agencies

# Uploaded files go under MEDIA_ROOT/<schema>/...: one agency's files never sit beside another's.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
# Hashed, compressed static files after `collectstatic`; tests serve them straight from the apps.
STATICFILES_MANIFEST = env_bool("STATICFILES_MANIFEST", True)
STORAGES = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATICFILES_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATICFILES_MANIFEST

# --- Accounts ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = env_int("INVITATION_TIMEOUT_SECONDS", 7 * 24 * 3600)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = (
    ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests only: hashing speed, never in use
    if env_bool("FAST_PASSWORD_HASHING")
    else ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "django.contrib.auth.hashers.ScryptPasswordHasher"]
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PLATFORM_SCHEME == "https"

# --- Language, time -------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "caravan.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "caravan.api.errors.exception_handler",
    # JSON numbers that overflow to infinity, and NaN, are parse errors (caravan.api.parsers).
    "DEFAULT_PARSER_CLASSES": ["caravan.api.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_THROTTLE_RATES": {"login": "20/min"},
    # Throttles key on the address our own proxies saw (as the enquiry form does): with the default
    # (None) DRF took the whole X-Forwarded-For a client sends, so invented addresses were never throttled.
    "NUM_PROXIES": PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Caravan API",
    "DESCRIPTION": "Agency API (on each agency host under /api/v1/) and operator API (on the platform domain).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CustomerKindEnum": "crm.models.Customer.Kind",
                            "DocumentKindEnum": "crm.models.TravelDocument.Kind"},
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TENANT_CACHE_SECONDS = 30
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our log format: every line shows [schema]
# One Redis may serve several deployments (or the tests' app server): each names its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")

# --- Supplier feeds -------------------------------------------------------------------------------
FEED_MAX_BYTES = env_int("FEED_MAX_BYTES", 512 * 1024 * 1024)  # a bigger message is refused
# Host names, addresses or networks outside the public internet that outbound requests (feed pulls)
# may still reach: an operator's on-premise suppliers (caravan/outbound.py). Empty: public only.
OUTBOUND_ALLOWED = env_list("OUTBOUND_ALLOWED")
FEED_FETCH_TIMEOUT = env_int("FEED_FETCH_TIMEOUT", 120)  # seconds without data before a pull gives up
# Where pushed and pulled messages wait for their run; web and worker must share it.
FEED_SPOOL_DIR = Path(env_str("FEED_SPOOL_DIR", str(BASE_DIR / "var" / "feeds")))

# --- Agency export, restore and deletion (docs/portability.md) -----------------------------------
# Archives are private: outside MEDIA_ROOT, served only through the fenced download view.
EXPORT_ROOT = Path(env_str("EXPORT_ROOT", str(BASE_DIR / "var" / "exports")))
EXPORT_RETENTION_HOURS = env_int("EXPORT_RETENTION_HOURS", 48)
AGENCY_DELETION_GRACE_DAYS = env_int("AGENCY_DELETION_GRACE_DAYS", 30)

# --- Mail -----------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = Path(env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail")))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Caravan <no-reply@caravan.localhost>")

# --- Personal data -------------------------------------------------------------------------------
# Travel document numbers are encrypted with these (see crm/crypto.py). Newest key first.
DOCUMENT_KEYS = env_secret("DOCUMENT_KEYS")
DOCUMENT_HASH_KEY = env_secret("DOCUMENT_HASH_KEY")
if not DOCUMENT_KEYS or not DOCUMENT_HASH_KEY:
    raise ImproperlyConfigured("DOCUMENT_KEYS and DOCUMENT_HASH_KEY must be set; `make run`/`make test` generate them in var/.")
CRM_DEFAULT_REGION = "CN"

# --- Observability --------------------------------------------------------------------------------
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it is off (404). Agencies
# beyond the first METRICS_TOP_AGENCIES seen share the label "other" (caravan.metrics.AgencyLabels).
# prometheus_client itself reads PROMETHEUS_MULTIPROC_DIR (docs/operations.md).
METRICS_TOKEN = env_secret("METRICS_TOKEN")
METRICS_TOP_AGENCIES = env_int("METRICS_TOP_AGENCIES", 20)
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)  # the Celery worker's own /metrics port; 0: none
LOG_FORMAT = env_str("LOG_FORMAT", "text")  # text ([schema] lines) or json (one object per line)

# --- Stripe (billing/) ----------------------------------------------------------------------------
# Empty STRIPE_API_BASE means Stripe itself; `make run` and the tests point it at localstripe.
STRIPE_SECRET_KEY = env_secret("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
BILLING_GRACE_DAYS = env_int("BILLING_GRACE_DAYS", 7)

SENTRY_DSN = env_secret("SENTRY_DSN")
# Every line carries [schema] (text) or request_id/schema/agency/user_id/task (json): caravan.logs.
from .logs import logging_config  # noqa: E402

LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))

from .observability import init_sentry  # noqa: E402  (needs the settings above)

init_sentry(dsn=SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", "development"))
