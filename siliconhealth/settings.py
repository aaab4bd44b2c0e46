"""SiliconHealth settings: one module, driven by the environment and the node's tier profile.

SILICONHEALTH_HOME holds everything that belongs to one node (SQLite database, media, node key,
broker queues, indexes), so two nodes on one machine differ only by that variable and their ports.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import env_bool, env_int, env_list, env_str
from .tiers import ProfileError, active_profile

BASE_DIR = Path(__file__).resolve().parent.parent

# deploy/profiles/<tier>.toml, picked by SILICONHEALTH_TIER, each value overridable (deploy/README.md).
try:
    PROFILE = active_profile()
except ProfileError as error:
    raise ImproperlyConfigured(str(error)) from None
TIER = PROFILE.name

SILICONHEALTH_HOME = Path(env_str("SILICONHEALTH_HOME", str(BASE_DIR / "var"))).resolve()
SILICONHEALTH_HOME.mkdir(parents=True, exist_ok=True)

# A production node must be given its secrets; a development node makes its own once.
PRODUCTION = env_bool("SILICONHEALTH_PRODUCTION", False)
DEBUG = env_bool("DEBUG", not PRODUCTION)


def _secret_key() -> str:
    configured = os.environ.get("SECRET_KEY")
    key_path = os.environ.get("SECRET_KEY_FILE")  # what the installer sets: the key stays out of env files
    if key_path and not configured:
        try:
            configured = Path(key_path).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"SECRET_KEY_FILE={key_path!r} cannot be read: {error}") from None
    if configured:
        if PRODUCTION and len(configured) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")
        return configured
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when SILICONHEALTH_PRODUCTION=1")
    key_file = SILICONHEALTH_HOME / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list this node's host names in production")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "accounts",
    "ledger",
    "records",
    "records.search",
    "asicproof",
    "sync",
    "audit",
    "deploy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "siliconhealth.disk_full.DiskFullSessionMiddleware",  # Django's, with a 507 when the disk is full
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ledger.middleware.CatchingUpMiddleware",
    "siliconhealth.disk_full.DiskFullMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "siliconhealth.middleware.ContentSecurityPolicyMiddleware",
    "siliconhealth.middleware.PrivateNoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "siliconhealth.urls"
WSGI_APPLICATION = "siliconhealth.wsgi.application"

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
                "siliconhealth.context_processors.node",
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("DATABASE_URL")
    if url is None:
        if PROFILE.database == "sqlite":
            url = f"sqlite:///{SILICONHEALTH_HOME / 'db.sqlite3'}"
        else:
            url = "postgres://postgres@127.0.0.1:5432/siliconhealth"
    # PostgreSQL keeps each worker's connection between requests: a new one forks a backend and warms
    # its caches, 3-5 ms of database CPU on every request (a chart read is ~20 ms in all; measured by
    # tests/bench/clinic_cpu.py). The check before reuse reconnects after a database restart. SQLite
    # opens a file: nothing to save there.
    keep = 0 if url.startswith("sqlite") else 600
    try:
        config = dj_database_url.parse(
            url, conn_max_age=env_int("DB_CONN_MAX_AGE", keep, minimum=0), conn_health_checks=True
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing
        # mid-transaction; WAL + synchronous=FULL keeps every committed write across power loss.
        # wal_autocheckpoint 4000 pages (16 MB of WAL, default 1000): the pages every write rewrites (the
        # tails of the ledger's log and indexes, its head row) go to the database file once per
        # checkpoint, so fewer, larger checkpoints write less - and less often to an SD card. Durability
        # is the WAL's fsync at each commit either way.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
            "PRAGMA wal_autocheckpoint=4000;",
        }
    elif config["ENGINE"] not in ("django.db.backends.postgresql",):
        raise ImproperlyConfigured(
            f"unsupported database engine {config['ENGINE']}: use SQLite or PostgreSQL"
        )
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The first hasher makes every new hash; the others only verify older hashes, which are re-hashed with
# the first at the user's next successful login (accounts/hashers.py says why Argon2 and these costs).
PASSWORD_HASHERS = [
    "accounts.hashers.NodeArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "records:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Lock a username from one address after repeated failures; not the whole address, since a clinic
# often shares one IP and one typo-prone tablet must not lock out every colleague.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("sw", _("Swahili"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Africa/Nairobi")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = SILICONHEALTH_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG  # development serves straight from static/; production from collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = SILICONHEALTH_HOME / "media"

# Uploads: the form refuses anything larger with a clear message before it is stored.
MAX_UPLOAD_BYTES = env_int("SILICONHEALTH_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o640

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 12 * 3600
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Node identity: the Ed25519 key lives beside the database, never inside it.
NODE_KEY_PATH = Path(env_str("SILICONHEALTH_NODE_KEY", str(SILICONHEALTH_HOME / "node_key.pem")))
NODE_PREFIX = env_str("SILICONHEALTH_NODE_PREFIX")  # assigned by the district; derived from the key if unset

# Celery: Redis on the hospital tiers, kombu's filesystem transport (no server) on the small ones.
_broker_dir = SILICONHEALTH_HOME / "broker"
if PROFILE.broker == "filesystem" and env_str("CELERY_BROKER_URL") is None:
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL", "filesystem://" if PROFILE.broker == "filesystem" else "redis://127.0.0.1:6379/0"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Embed new and changed records for the search after each commit (off for bulk loads, then reindex).
SEARCH_INDEX_ON_WRITE = env_bool("SILICONHEALTH_SEARCH_INDEX_ON_WRITE", True)
CELERY_BEAT_SCHEDULE_FILENAME = str(SILICONHEALTH_HOME / "celerybeat-schedule")
CHECKPOINT_SECONDS = PROFILE.checkpoint_interval_seconds  # SILICONHEALTH_CHECKPOINT_SECONDS overrides
CELERY_WORKER_CONCURRENCY = PROFILE.celery_concurrency
CELERY_BEAT_SCHEDULE = {
    "seal-checkpoint": {"task": "ledger.tasks.seal_checkpoint", "schedule": CHECKPOINT_SECONDS},
    # The task itself decides whether a round with the parent is due (tier interval, backoff).
    "sync-with-parent": {"task": "sync.tasks.sync_with_parent", "schedule": 60},
    "poll-devices": {
        "task": "asicproof.tasks.poll_devices",
        "schedule": env_int("SILICONHEALTH_DEVICE_POLL_SECONDS", 60, minimum=5),
    },
    # Signs the access log's head into the ledger, so its tail cannot be cut silently (no-op if idle).
    "anchor-access-log": {
        "task": "audit.tasks.anchor_access_log",
        "schedule": env_int("SILICONHEALTH_ACCESS_ANCHOR_SECONDS", 900, minimum=30),
    },
    # Hourly check; the task backs up only when the newest backup is a day old (so the systemd
    # timer and beat never double up) and only once the operator's public key is installed.
    "nightly-backup": {"task": "deploy.tasks.nightly_backup", "schedule": 3600},
}
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
