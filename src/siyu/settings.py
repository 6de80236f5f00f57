"""Siyu settings, read from SIYU_* environment variables (see docs/configuration.md)."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from siyu.env import env_bool, env_int, env_list, env_str, var_dir

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()

DEBUG = env_bool("SIYU_DEBUG", False)
SECRET_KEY = env_str("SIYU_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("SIYU_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SIYU_SECRET_KEY must be set in production")
    # An embedded install keeps a generated key next to its database.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
    SECRET_KEY = key_file.read_text().strip()
# Earlier keys, still accepted after a rotation (sessions, and WeCom secrets stored encrypted).
SECRET_KEY_FALLBACKS = env_list("SIYU_SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("SIYU_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("SIYU_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "huey.contrib.djhuey",
    "siyu.core",
    "siyu.org",
    "siyu.customers",
    "siyu.commerce",
    "siyu.events",
    "siyu.tags",
    "siyu.segments",
    "siyu.imports",
    "siyu.content",
    "siyu.channels",
    "siyu.channels.wecom",
    "siyu.campaigns",
    "siyu.notifications",
    "siyu.leads",
    "siyu.webhooks",
    "siyu.console",
    "siyu.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "siyu.console.middleware.ChineseFirstMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "siyu.console.context.console",
            ],
        },
    },
]


def _database(url: str) -> dict:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "siyu.sqlite3",
        }
    try:
        return dj_database_url.parse(url, conn_max_age=env_int("SIYU_DB_CONN_MAX_AGE", 60))
    except ValueError as exc:
        raise ImproperlyConfigured(f"SIYU_DATABASE_URL is not a database URL: {exc}") from exc


DATABASES = {"default": _database(env_str("SIYU_DATABASE_URL"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web console read while the worker writes; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on the busy timeout instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("SIYU_REDIS_URL")
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": env_str("SIYU_QUEUE_NAME", "siyu"),
        "url": REDIS_URL,
        "immediate": False,
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "siyu",
        "filename": str(VAR_DIR / "huey.sqlite3"),
        "immediate": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "siyu_cache",
        }
    }
HUEY["immediate"] = env_bool("SIYU_HUEY_IMMEDIATE", False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("SIYU_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("SIYU_STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SIYU_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SIYU_LOG_LEVEL", "INFO")},
    # httpx logs each request's full URL at INFO, and WeCom puts secrets and tokens in the query.
    "loggers": {"httpx": {"level": "WARNING"}},
}

# Business settings.
SIYU_FRIEND_CAP_DEFAULT = env_int("SIYU_FRIEND_CAP_DEFAULT", 5000)
SIYU_PHONE_REGION = env_str("SIYU_PHONE_REGION", "CN")
SIYU_PAGE_SIZE = 50
# RFM and lifecycle stages (docs/rfm.md): the RFM window, and the inactivity thresholds in days.
SIYU_RFM_WINDOW_DAYS = env_int("SIYU_RFM_WINDOW_DAYS", 365)
SIYU_ENGAGED_DAYS = env_int("SIYU_ENGAGED_DAYS", 30)
SIYU_AT_RISK_DAYS = env_int("SIYU_AT_RISK_DAYS", 180)
SIYU_LOST_DAYS = env_int("SIYU_LOST_DAYS", 365)
# The share of monetary value that the super users (is_super_user) bring together, in percent.
SIYU_SUPER_USER_SHARE = env_int("SIYU_SUPER_USER_SHARE", 80)
# Lifetime value (docs/clv.md): days held out to check the model's predictions on the model page.
SIYU_CLV_HOLDOUT_DAYS = env_int("SIYU_CLV_HOLDOUT_DAYS", 90)
# Hot leads (docs/leads.md): engagement counted over this many days, halving every half-life.
SIYU_LEADS_WINDOW_DAYS = env_int("SIYU_LEADS_WINDOW_DAYS", 30)
SIYU_LEADS_HALF_LIFE_DAYS = env_int("SIYU_LEADS_HALF_LIFE_DAYS", 3)

# Campaigns (docs/campaigns.md): do-not-disturb defaults and the sender's pace.
# Marketing messages per customer: across all channels, and per channel (same defaults).
SIYU_CAMPAIGN_CAP_DAY = env_int("SIYU_CAMPAIGN_CAP_DAY", 1)
SIYU_CAMPAIGN_CAP_WEEK = env_int("SIYU_CAMPAIGN_CAP_WEEK", 3)
SIYU_CAMPAIGN_CHANNEL_CAP_DAY = env_int("SIYU_CAMPAIGN_CHANNEL_CAP_DAY", 1)
SIYU_CAMPAIGN_CHANNEL_CAP_WEEK = env_int("SIYU_CAMPAIGN_CHANNEL_CAP_WEEK", 3)
# Quiet hours in the organisation's zone, "HH:MM-HH:MM" (may wrap midnight); empty: none.
SIYU_QUIET_HOURS = env_str("SIYU_QUIET_HOURS", "21:00-09:00")
# Consent: "opt_out" sends unless the customer said no; "opt_in" needs an explicit yes.
SIYU_CAMPAIGN_CONSENT = env_str("SIYU_CAMPAIGN_CONSENT", "opt_out")
SIYU_CAMPAIGN_BATCH = env_int("SIYU_CAMPAIGN_BATCH", 500)
# Sender tasks started each minute; they run in parallel on the workers there are.
SIYU_CAMPAIGN_SENDERS = env_int("SIYU_CAMPAIGN_SENDERS", 2)
SIYU_CAMPAIGN_MAX_ATTEMPTS = env_int("SIYU_CAMPAIGN_MAX_ATTEMPTS", 5)
SIYU_CAMPAIGN_RETRY_SECONDS = env_int("SIYU_CAMPAIGN_RETRY_SECONDS", 60)
# A delivery left "sending" longer than this belonged to a worker that died: send it again.
SIYU_CAMPAIGN_LEASE_SECONDS = env_int("SIYU_CAMPAIGN_LEASE_SECONDS", 300)
# Guardrail: pause a campaign when, of at least MIN recipients in the last 24 hours, more than
# BASIS_POINTS / 10,000 deleted or blocked their staff contact or unsubscribed (50 = 0.5 %).
SIYU_CAMPAIGN_GUARDRAIL_BASIS_POINTS = env_int("SIYU_CAMPAIGN_GUARDRAIL_BASIS_POINTS", 50)
SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS = env_int("SIYU_CAMPAIGN_GUARDRAIL_MIN_RECIPIENTS", 200)
# Where customers reach Siyu's public pages (tracked links /m/…) in messages sent by the worker.
SIYU_PUBLIC_URL = env_str("SIYU_PUBLIC_URL", "http://localhost:8000")
# A/B tests count a reply when the customer has an event of this type within the window after
# a send (WeCom's connector or an integration records it; docs/campaigns.md, "A/B tests").
SIYU_CAMPAIGN_REPLY_EVENT = env_str("SIYU_CAMPAIGN_REPLY_EVENT", "message_replied")
SIYU_CAMPAIGN_REPLY_HOURS = env_int("SIYU_CAMPAIGN_REPLY_HOURS", 48)
# Sends per second per channel (token bucket); 0 means unlimited.
SIYU_CHANNEL_RATE_EMAIL = env_int("SIYU_CHANNEL_RATE_EMAIL", 20)
SIYU_CHANNEL_RATE_SMS = env_int("SIYU_CHANNEL_RATE_SMS", 50)
SIYU_CHANNEL_RATE_STAFF_TASK = env_int("SIYU_CHANNEL_RATE_STAFF_TASK", 0)
SIYU_CHANNEL_RATE_WEBHOOK = env_int("SIYU_CHANNEL_RATE_WEBHOOK", 0)

# Channels. E-mail through Django's SMTP backend.
EMAIL_HOST = env_str("SIYU_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("SIYU_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("SIYU_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_str("SIYU_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("SIYU_EMAIL_TLS", False)
EMAIL_TIMEOUT = env_int("SIYU_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("SIYU_EMAIL_FROM", "noreply@localhost")
# SMS through an HTTP gateway speaking the protocol in docs/campaigns.md.
SIYU_SMS_GATEWAY_URL = env_str("SIYU_SMS_GATEWAY_URL")
SIYU_SMS_API_KEY = env_str("SIYU_SMS_API_KEY")
SIYU_SMS_SECRET = env_str("SIYU_SMS_SECRET")
SIYU_SMS_TIMEOUT = env_int("SIYU_SMS_TIMEOUT", 10)

# Outgoing webhooks (docs/webhooks.md). Private, loopback and link-local addresses are refused
# unless this is on (for receivers inside the intranet, and for tests).
SIYU_WEBHOOKS_ALLOW_PRIVATE = env_bool("SIYU_WEBHOOKS_ALLOW_PRIVATE", False)
SIYU_WEBHOOKS_TIMEOUT = env_int("SIYU_WEBHOOKS_TIMEOUT", 5)
# A subscription is disabled after this many failed deliveries in a row, or failing this long.
SIYU_WEBHOOKS_DISABLE_AFTER = env_int("SIYU_WEBHOOKS_DISABLE_AFTER", 50)
SIYU_WEBHOOKS_DISABLE_AFTER_DAYS = env_int("SIYU_WEBHOOKS_DISABLE_AFTER_DAYS", 3)

# WeCom connector (docs/wecom.md). The API base URL (tests point it at a local fake server),
# timeouts, retries with backoff, the callback replay window, and the concurrency of calls.
SIYU_WECOM_BASE_URL = env_str("SIYU_WECOM_BASE_URL", "https://qyapi.weixin.qq.com/cgi-bin/")
SIYU_WECOM_TIMEOUT = env_int("SIYU_WECOM_TIMEOUT", 10)
SIYU_WECOM_RETRIES = env_int("SIYU_WECOM_RETRIES", 3)
SIYU_WECOM_BACKOFF_MS = env_int("SIYU_WECOM_BACKOFF_MS", 500)
SIYU_WECOM_CONCURRENCY = env_int("SIYU_WECOM_CONCURRENCY", 4)
SIYU_WECOM_CALLBACK_WINDOW = env_int("SIYU_WECOM_CALLBACK_WINDOW", 300)
# Dimension of the tag groups that mirror WeCom corp tag groups.
SIYU_WECOM_TAG_DIMENSION = env_str("SIYU_WECOM_TAG_DIMENSION", "preference")
# Mass messages: WeCom lets a customer receive this many per day (the platform's limit), and a
# task its staff member has not sent after this many hours is given up as not sent.
SIYU_WECOM_MASS_PER_CUSTOMER_DAY = env_int("SIYU_WECOM_MASS_PER_CUSTOMER_DAY", 1)
SIYU_WECOM_MASS_TIMEOUT_HOURS = env_int("SIYU_WECOM_MASS_TIMEOUT_HOURS", 72)
# A contact sync without progress for this many minutes lost its worker: marked failed.
SIYU_WECOM_SYNC_STALE_MINUTES = env_int("SIYU_WECOM_SYNC_STALE_MINUTES", 30)
