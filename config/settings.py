"""Regulars settings: every value comes from the environment.

The defaults run with no service at all (SQLite in the project folder, tasks run
eagerly in-process, local-memory cache), so `make run` works on a fresh machine.
Production and CI set DATABASE_URL, CELERY_BROKER_URL and REDIS_URL; production
also sets DEBUG=false, SECRET_KEY and ALLOWED_HOSTS (see README.md).
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only for local development; `check --deploy` flags the prefix.
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "shops",
    "members",
    "tiers",
    "points",
    "analytics",
    "marketing",
    "portal",
]

MIDDLEWARE = [
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
    # After authentication: sets the current shop for staff requests.
    "shops.middleware.StaffShopMiddleware",
    # After it: the active shop's language when the user has not chosen one.
    "shops.language.ShopLanguageMiddleware",
]

# Requests under /api/ (authenticated by key, never by session) pass through
# these only (config/wsgi.py); each is also in MIDDLEWARE, in the same order.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The hot paths' hand-written statements are prepared once per connection
# (shops/rawsql.py). Off behind a pooler in transaction mode (PgBouncer).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "shops.User"
_VALIDATION = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATION}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATION}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATION}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATION}.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

# Cache: Redis when REDIS_URL is set (atomic counters shared by every process),
# local memory otherwise.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "shops.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="regulars"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Language and time
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# Static and media
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Email: console by default; production names an anymail backend (README.md).
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
# SMS (one-time codes now; campaigns later): a class with send(*, shop, to, text).
SMS_BACKEND = env(
    "SMS_BACKEND", default="members.services.verification.ConsoleSmsBackend"
)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Regulars <noreply@localhost>")

# Security: taken from the environment so that production passes `check --deploy`.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("TRUST_X_FORWARDED_PROTO", False)
    else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["shops.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["shops.api.auth.HasShopApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["shops.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env("API_RATE_PER_KEY", default="6000/min")},
    "DEFAULT_PAGINATION_CLASS": "shops.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "shops.api.schema.RegularsAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["shops.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "shops.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Regulars API",
    "DESCRIPTION": (
        "Membership and loyalty for shops. Authenticate with "
        "`Authorization: Api-Key <key>`; keys are per shop, read or write."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "DEFAULT_GENERATOR_CLASS": "shops.api.schema.ShopScopedSchemaGenerator",
    # Several models have a "source" and a "status": name each set of choices.
    "ENUM_NAME_OVERRIDES": {
        "MemberSourceEnum": "members.models.MemberSource",
        "MemberStatusEnum": "members.models.MemberStatus",
        "PurchaseStatusEnum": "members.models.PurchaseStatus",
        "TagSourceEnum": "members.models.TagSource",
        "EntryKindEnum": "points.models.EntryKind",
        "EntrySourceEnum": "points.models.EntrySource",
        "RedemptionKindEnum": "points.models.RedemptionKind",
        "RedemptionStatusEnum": "points.models.RedemptionStatus",
    },
}
API_KEY_CUSTOM_HEADER = None
IDEMPOTENCY_KEEP_DAYS = env.int("IDEMPOTENCY_KEEP_DAYS", default=7)

# Celery: eager in-process when no broker is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Work must not be lost: acknowledge after the task ran, give a task back when its
# worker dies, and take one task at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_TIME_LIMIT = 30 * 60
# Longer than the longest task, or Redis hands an unacknowledged task out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request publishing to a broker that is away gives up fast; the outbox relay
# hands the work over later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {
        "task": "shops.tasks.relay_outbox",
        "schedule": timedelta(seconds=env.int("OUTBOX_RELAY_SECONDS", default=10)),
    },
    "retry-due-webhooks": {
        "task": "shops.tasks.retry_due_webhook_deliveries",
        "schedule": timedelta(seconds=30),
    },
    "purge-idempotency-records": {
        "task": "shops.tasks.purge_idempotency_records",
        "schedule": timedelta(hours=6),
    },
    # Nightly for China's shops (19:30 UTC is 03:30 in Asia/Shanghai); safe to re-run.
    "apply-tag-rules": {
        "task": "members.apply_tag_rules_everywhere",
        "schedule": crontab(hour=19, minute=30),
    },
    # Period ends, grace ends and manual tiers that run out (00:15 Shanghai).
    "tiers-nightly": {
        "task": "tiers.run_period_ends_everywhere",
        "schedule": crontab(hour=16, minute=15),
    },
    # Every shop's tiers recalculated, set-based, after the period ends (00:30).
    "tiers-recalculate": {
        "task": "tiers.recalculate_everywhere",
        "schedule": crontab(hour=16, minute=30),
    },
    # Lots that are due expire (00:45 Shanghai); pending points become spendable.
    "points-expire": {
        "task": "points.expire_due_lots_everywhere",
        "schedule": crontab(hour=16, minute=45),
    },
    # Birthday bonuses of the day (09:00 Shanghai), once a year per member.
    "points-birthdays": {
        "task": "points.award_birthday_bonuses_everywhere",
        "schedule": crontab(hour=1, minute=0),
    },
    # Points out of their return window become spendable (shown as such).
    "points-release-pending": {
        "task": "points.release_pending_everywhere",
        "schedule": timedelta(hours=1),
    },
    # Registration and completed-profile bonuses, set-based and once by key.
    "points-signup-bonuses": {
        "task": "points.award_signup_bonuses_everywhere",
        "schedule": timedelta(minutes=10),
    },
}

# Webhooks may target private addresses only where that is safe (development, CI).
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
# Failed deliveries wait 30 s, 1 min, 2 min, ... (doubling, at most 4 hours) and
# are given up after 10 attempts. A delivery still `sending` after the stale
# time lost its worker and is sent again (longer than the send task's limit).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=4 * 60 * 60)
WEBHOOK_SENDING_STALE_SECONDS = env.int("WEBHOOK_SENDING_STALE_SECONDS", default=600)

# Admin
UNFOLD = {
    "SITE_TITLE": _("Regulars"),
    "SITE_HEADER": _("Regulars"),
    "SITE_SYMBOL": "loyalty",
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    # "View site" goes to the welcome page; the site menu links the API docs.
    "SITE_URL": "/",
    "SITE_DROPDOWN": [
        {"icon": "home", "title": _("Welcome page"), "link": "/"},
        {"icon": "api", "title": _("API documentation"), "link": "/api/docs/"},
    ],
    # The sidebar lists every app the staff member's role may open.
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # One line per task run drowns everything else, above all in eager
        # mode (`make run`), where every commit runs the outbox relay in-process.
        "celery.app.trace": {"level": env("TASK_LOG_LEVEL", default="WARNING")},
    },
}
