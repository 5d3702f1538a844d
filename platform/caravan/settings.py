"""Caravan's one settings module, driven by the environment (docs/configuration.md lists it all).

Tests, `make run` and production read the same file; only environment variables differ.
"""
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from csp import constants as csp_constants

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
    "rest_framework.authtoken",  # contract: unused since named tokens (accounts.ApiToken); drop next release
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",  # sign-in lockout; also a tenant app: each agency's failures stay in its schema (accounts.signin)
    "csp",  # django-csp's checks and template tags; the policy is CONTENT_SECURITY_POLICY below
    "caravan",
    "accounts",
    "console",
    "billing",
    "integrations",
    "integrations.credentials",  # also a tenant app: each feed's secrets live in its owner's schema
    "tenants.jobs",  # label agency_jobs: when each periodic agency job next has work
    "frontend",
    # Second factor, sessions list, new-device mail (docs/two-step-sign-in.md); also tenant apps:
    # operators' devices live in public, each agency's staff devices in its schema.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "accounts.mfa",
    # The destination knowledge base: in public the operators' shared base, in each agency its own articles.
    "crm.destinations",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework.authtoken",
    "axes",
    "accounts",
    "crm.customers",
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
    "crm.privacy",  # label privacy: the access log and the per-customer data export
    "crm.retention",
    "crm.destinations",  # also a shared app: the operators' shared base lives in public
    "crm.portal",  # the customer portal: sign-in links, settings, messages (frontend/portal: its pages)
    "crm.checkout",  # online payments of deposits and balances with the agency's own Stripe account
    "crm.documents",  # label document_files: document scans, encrypted at rest per agency (issue 21)
    "crm.proposals",  # proposals a customer accepts in the portal, and their PDFs
    "integrations.credentials",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "accounts.mfa",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
# crm is a tenant app but its pages live in frontend/ and its API in crm/customers/api.py.

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
    # An /api/ request with a token or a website's signature goes down this list without
    # BROWSER_ONLY_MIDDLEWARE (caravan.handlers).
    "caravan.handlers.TokenAPIRouter",
    # /healthz, /readyz, /metrics on any host; request id, log context and HTTP metrics (caravan.metrics).
    "caravan.metrics.ObservabilityMiddleware",
    # HTTPS redirect, HSTS, nosniff, Referrer-Policy, COOP: before the host is looked up.
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy with a per-response nonce (request.csp_nonce), and Permissions-Policy.
    "caravan.security.CSPMiddleware",  # django-csp's, the site-wide policy built once
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # A GET/HEAD whose PostgreSQL connection was lost runs once more on a new one (caravan.dbfaults);
    # before the host lookup, so the retry sets the agency (and search_path) again.
    "caravan.dbfaults.RetryLostConnectionMiddleware",
    "caravan.tenancy.middleware.AgencyMainMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # /portal/ only: the customer portal's own session cookie (frontend.portal.session; never a staff session).
    "frontend.portal.session.PortalSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # user.is_verified(): the session passed the second step (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # Signed in but not through the second step (or not enrolled where it is required): only the
    # two-step, enrolment, sign-out and language pages; session bookkeeping (accounts.mfa).
    "accounts.mfa.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "caravan.tenancy.middleware.AgencyContextMiddleware",
    "caravan.tenancy.middleware.ReadOnlyAgencyMiddleware",
    # NUL bytes in the path, query or form: a 400 naming the field, never a 500 (caravan.input).
    "caravan.input.RejectNulMiddleware",
    # Turns a sign-in refused by django-axes into the lockout page or API error (accounts.signin).
    "axes.middleware.AxesMiddleware",
]
# What a token (or signed webhook) API request skips (caravan.handlers): it has no session, CSRF cookie, messages or second
# step, is never a portal, htmx or static-file request. Everything else in MIDDLEWARE (every fence)
# runs for it too, including any middleware added later unless it is named here.
BROWSER_ONLY_MIDDLEWARE = [
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "frontend.portal.session.PortalSessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.mfa.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
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
                "frontend.portal.context.portal",  # portal pages only: branding, who is signed in
            ],
            # |money, |num, |percent, |day, |daytime, |time_of_day, |month in every template (caravan.formatting)
            "builtins": ["caravan.templatetags.fmt"],
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
# django-tenants' backend whose per-request health check is the agency's SET search_path (caravan/db/session).
DATABASES["default"]["ENGINE"] = "caravan.db.session"
# Behind PgBouncer in transaction-pooling mode every statement must carry the agency's search_path
# (caravan/db/base.py); "session" (direct PostgreSQL or PgBouncer session mode) keeps caravan.db.session.
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

# --- HTTPS and security headers (docs/deploy.md, "Production settings") ------------------------
# Everything below follows PLATFORM_SCHEME: with https (and DEBUG off) the deployment is production.
HTTPS = PLATFORM_SCHEME == "https"
SESSION_COOKIE_HTTPONLY = True
# Two-step sign-in (accounts.mfa, docs/two-step-sign-in.md). Passkeys: the relying party is the host
# the user signs in on (an agency's subdomain, or the platform domain), with PLATFORM_SCHEME/PORT.
OTP_TOTP_ISSUER = "Caravan"
OTP_WEBAUTHN_RP_ID_CALLABLE = "accounts.mfa.webauthn.rp_id"
OTP_WEBAUTHN_RP_NAME_CALLABLE = "accounts.mfa.webauthn.rp_name"
OTP_WEBAUTHN_HELPER_CLASS = "accounts.mfa.webauthn.HostHelper"
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a passkey is the second step after the password
# The allowed origin is computed per request (accounts.mfa.webauthn.HostHelper), not listed.
SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E030"]
# Sign-in lockout (django-axes, docs/accounts-security.md): after SIGNIN_FAILURE_LIMIT failures for one
# account or from one address (as our proxies saw it) within SIGNIN_LOCKOUT_MINUTES, sign-in is refused
# for that long. The database handler keeps the counts in each agency's own schema.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
SIGNIN_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 10)
SIGNIN_LOCKOUT_MINUTES = env_int("SIGNIN_LOCKOUT_MINUTES", 15)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = SIGNIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SIGNIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one over the limit locks
AXES_CLIENT_IP_CALLABLE = "caravan.clients.request_address"
AXES_USERNAME_CALLABLE = "accounts.signin.username_of"
AXES_LOCKOUT_CALLABLE = "accounts.signin.lockout_response"
AXES_RESET_ON_SUCCESS = False  # a sign-in clears its account's failures only (accounts.signin.forget_failures_of)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lockout ends when the page says it does
AXES_DISABLE_ACCESS_LOG = True  # failures only: no row per successful sign-in
AXES_SENSITIVE_PARAMETERS = ["username", "password", "csrfmiddlewaretoken"]
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
# API tokens (accounts.ApiToken): days a token from POST auth/token/ lasts.
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 30)
# htmx sends the token from base.html's hx-headers and other scripts from the page, never the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# Our proxies set X-Forwarded-Proto (and strip a client's); without proxies nothing may claim https.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PROXY_COUNT > 0 else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS and not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes speak plain http to the pod
# Agencies are subdomains of PLATFORM_DOMAIN: HSTS covers them all. Preloading is an opt-in (hard to undo).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600) if HTTPS and not DEBUG else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # the embeddable enquiry form is exempt (frontend/views/pipeline.py)
# Content-Security-Policy (django-csp 4): scripts only from us and with this response's nonce; no
# inline handlers, eval or javascript: URLs anywhere. Style attributes stay allowed (tier colours,
# progress bars), <style> elements need the nonce. Stripe's hosts are added on the Billing page
# only (caravan.security.stripe_csp), the embeddable enquiry form drops frame-ancestors.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", csp_constants.NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],  # browsers without -elem/-attr (older Safari)
        "style-src-elem": ["'self'", csp_constants.NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "upgrade-insecure-requests": HTTPS,
        # Where browsers report violations (e.g. Sentry's security endpoint); unset: not reported.
        "report-uri": env_str("CSP_REPORT_URI") or None,
    },
}
# Powerful browser features nobody in Caravan uses are off for us and anything we embed; passkeys
# (WebAuthn) stay on for our own pages, payment for Stripe's card frame.
PERMISSIONS_POLICY = {
    "accelerometer": [], "ambient-light-sensor": [], "autoplay": [], "bluetooth": [], "browsing-topics": [],
    "camera": [], "display-capture": [], "encrypted-media": [], "geolocation": [], "gyroscope": [], "hid": [],
    "idle-detection": [], "local-fonts": [], "magnetometer": [], "microphone": [],
    "midi": [], "payment": ["self", "https://js.stripe.com"], "picture-in-picture": [],
    "publickey-credentials-create": ["self"], "publickey-credentials-get": ["self"], "screen-wake-lock": [],
    "serial": [], "usb": [], "window-management": [], "xr-spatial-tracking": [],
}
# `check --deploy` asks for HSTS preloading (security.W021): it stays an opt-in, since leaving the
# browsers' preload list takes months; the other deployment checks pass with PLATFORM_SCHEME=https.
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]

# --- Language, time -------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True
# Our date and number formats per language ("6 Dec 2026", "14:05", "2026年12月6日", thousands by ","):
# caravan/formats/<lang>/formats.py, shown through caravan.formatting (ARCHITECTURE.md, "Formatting").
FORMAT_MODULE_PATH = ["caravan.formats"]

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",  # named, scoped tokens (accounts.scopes)
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "caravan.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        # search and ordering only where a view declares how (search_fields / search_queryset, ordering_fields)
        "caravan.api.filters.SearchFilter",
        "caravan.api.filters.OrderingFilter",
    ],
    # Every operation declares the error answers (caravan.api.errors.ErrorOutput); pages only for lists.
    "DEFAULT_SCHEMA_CLASS": "caravan.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "caravan.api.errors.exception_handler",
    # JSON numbers that overflow to infinity, and NaN, are parse errors (caravan.api.parsers).
    "DEFAULT_PARSER_CLASSES": ["caravan.api.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_THROTTLE_RATES": {"login": "20/min"},
    # Each agency's API requests per minute, from its plan (billing.throttling; 429 with Retry-After).
    "DEFAULT_THROTTLE_CLASSES": ["billing.throttling.AgencyPlanThrottle"],
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
    "ENUM_NAME_OVERRIDES": {"CustomerKindEnum": "crm.customers.models.Customer.Kind",
                            "DocumentKindEnum": "crm.customers.models.TravelDocument.Kind",
                            "DestinationKindEnum": "crm.destinations.models.Article.Kind",
                            "ArticleChangeKindEnum": "crm.destinations.models.ArticleChange.Kind"},
    # Not part of `check --deploy`: that check generates one schema from ROOT_URLCONF with no request
    # (no agency, no user, which the sealed viewsets refuse); the two real schemas (agency and
    # operator URL maps) are generated and checked against the API by tests/test_api_contract.py.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
# A worker child whose resident memory passed this after a task is replaced (KiB for Celery).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("WORKER_MAX_MEMORY_MB", 2048) * 1024
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TENANT_CACHE_SECONDS = 30
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our log format: every line shows [schema]
# One Redis may serve several deployments (or the tests' app server): each names its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# Long jobs (imports, exports, feed runs, tier recomputes) hold a lease their worker renews; the
# watchdog resumes a job whose lease ran out, and gives it up after JOB_MAX_ATTEMPTS (caravan/leases.py).
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 60)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)

# --- Supplier feeds -------------------------------------------------------------------------------
FEED_MAX_BYTES = env_int("FEED_MAX_BYTES", 512 * 1024 * 1024)  # a bigger message is refused
# What an upload or a feed may unpack to, not only its size on the wire (caravan/unpack.py, issue 18).
FEED_MAX_UNPACKED_BYTES = env_int("FEED_MAX_UNPACKED_BYTES", 2 * 1024 * 1024 * 1024)  # a gzipped message, inflated
UPLOAD_MAX_UNPACKED_BYTES = env_int("UPLOAD_MAX_UNPACKED_BYTES", 200 * 1024 * 1024)  # an .xlsx (a zip), all parts
UPLOAD_MAX_RATIO = env_int("UPLOAD_MAX_RATIO", 100)  # unpacked / packed, per part past 1 MB (zip and gzip)
PORTAL_UPLOAD_MAX_BYTES = env_int("PORTAL_UPLOAD_MAX_BYTES", 10 * 1024 * 1024)  # a document scan (crm.documents)
PARSE_MAX_MEMORY_MB = env_int("PARSE_MAX_MEMORY_MB", 1536)  # address space a worker's parse of one file may add
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
# A customer list export of more rows than this is made in the background (a leased job, a private
# file under EXPORT_ROOT/customers/) and downloaded when ready; up to it, answered at once, whole.
CUSTOMER_EXPORT_DIRECT_ROWS = env_int("CUSTOMER_EXPORT_DIRECT_ROWS", 5000)
AGENCY_DELETION_GRACE_DAYS = env_int("AGENCY_DELETION_GRACE_DAYS", 30)
# Access log entries (crm.privacy: who saw which customer's data) are deleted after this many days; 0 keeps them.
ACCESS_LOG_RETENTION_DAYS = env_int("ACCESS_LOG_RETENTION_DAYS", 730)

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
# Travel document numbers are encrypted with these (see crm/customers/crypto.py). Newest key first.
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
# API requests per minute per agency for plans that set none (billing.Plan.api_requests_per_minute); 0: no limit.
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 600)

SENTRY_DSN = env_secret("SENTRY_DSN")
# Every line carries [schema] (text) or request_id/schema/agency/user_id/task (json): caravan.logs.
from .logs import logging_config  # noqa: E402

LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))

from .observability import init_sentry  # noqa: E402  (needs the settings above)

init_sentry(dsn=SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", "development"))
