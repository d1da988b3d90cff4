"""Django settings for the Guangming land-consolidation registry.

Everything that differs between a laptop and a server comes from the environment:
``DATABASE_URL`` (or the libpq ``PG*`` variables), ``SECRET_KEY``, ``DEBUG``,
``ALLOWED_HOSTS``. The defaults suit one local machine: DEBUG is off unless asked
for and only loopback host names are accepted.
"""

import datetime
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on")."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item]


# DJANGO_ENV=production: a server behind TLS (README, "Running in production").
# Then SECRET_KEY must come from the environment, DEBUG must stay off, and the
# cookies, HSTS and the HTTPS redirect below are on. Anything else (the default,
# "development") suits `make demo` and `make test` on loopback, without TLS.
PRODUCTION = os.environ.get("DJANGO_ENV", "development").strip().lower() == (
    "production"
)
DEBUG = env_bool("DEBUG")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")


def local_secret_key(path: Path) -> str:
    """Return this installation's own random key, created on first use (mode 600).

    No key is shipped in the code: without SECRET_KEY in the environment every
    machine gets its own, kept across restarts so sessions survive them.
    """
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


if PRODUCTION and not os.environ.get("SECRET_KEY"):
    # Every server of an installation must share one key, kept by whoever runs
    # them; a key made on the first start would differ between servers.
    raise ImproperlyConfigured("DJANGO_ENV=production needs SECRET_KEY to be set.")
SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret_key(
    BASE_DIR / "var" / "secret_key"
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "procrastinate.contrib.django",
    "axes",
    "spatial",
    "registry",
    "importers",
    "tilesvc",
    "fixtures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.nul_guard.RefuseNulMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Map tiles leave here: they need nothing below (see the module).
    "tilesvc.lane.TileLaneMiddleware",
    "config.locale.ChineseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which would read an upload first (see the module).
    "config.upload_refusals.UploadRefusalMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "registry.audit_origin.OriginMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registry.context_processors.synthetic_data",
                "registry.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"


def database_config() -> dict:
    """Build the default database from DATABASE_URL, else from libpq's PG* names."""
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=60)
    else:
        config = {
            "NAME": os.environ.get("PGDATABASE", "landreg"),
            "USER": os.environ.get("PGUSER", "landreg"),
            "PASSWORD": os.environ.get("PGPASSWORD", "landreg"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "CONN_MAX_AGE": 60,
        }
    config["ENGINE"] = "django.contrib.gis.db.backends.postgis"
    options = config.setdefault("OPTIONS", {})
    options["application_name"] = "landreg"
    # The application's queries are short, index-driven reads (a page of 1,000
    # parcels, a tile) and set-based writes; starting parallel workers costs
    # them more than it saves (measured: a 1,000-parcel page 22 ms with two
    # workers, 11 ms without), and on a 2-core server the workers take the
    # cores other requests are waiting for. Analyses run from psql keep the
    # server's default.
    options["options"] = "-c max_parallel_workers_per_gather=0"
    return config


DATABASES = {"default": database_config()}
# A second connection to the same database, for progress that must be visible
# while an import's own transaction is still open. Tests share the default one.
DATABASES["progress"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Simplified Chinese unless the user picks English (config/locale.py says why).
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
# WhiteNoise serves the collected files (`make demo` runs collectstatic) so that
# no page depends on a CDN or a separate web server; no manifest, so tests and
# `runserver` work without collecting first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# An office day: a login lasts 8 hours at most, and ends with the browser
# unless SESSION_EXPIRE_AT_BROWSER_CLOSE=0 (the server forgets it after 8 hours
# either way).
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", 8 * 3600))
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
# Cookies only over TLS, HSTS and the redirect to HTTPS: on in production, where
# a TLS terminator stands in front (SECURE_SSL_REDIRECT=0 if it redirects
# itself). SECURE_PROXY_SSL_HEADER names the header by which that proxy says
# the client spoke HTTPS (e.g. X-Forwarded-Proto); set it only when the proxy
# always sets or strips that header, or any client could claim HTTPS.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = int(
    os.environ.get("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Browsers' preload list is for public domains; an intranet name cannot be on it,
# so preloading is asked for only when SECURE_HSTS_PRELOAD=1.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
if _proxy_header := os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_header.upper().replace("-", "_"),
        "https",
    )
# The site's own origin(s) as the browser sees them, when a proxy changes the
# host or scheme (e.g. https://registry.example.gov.cn).
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Login throttling (config/lockouts.py): after AXES_FAILURE_LIMIT wrong passwords
# for one user name from one address, that pair is locked for the cool-off time.
AUTHENTICATION_BACKENDS = [
    "config.lockouts.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = datetime.timedelta(
    minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", 15))
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.lockouts.locked_out"
AXES_CLIENT_IP_CALLABLE = "config.lockouts.client_ip"
# The registry's own admin site shows the attempts (config/lockouts.py).
AXES_ENABLE_ADMIN = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # procrastinate announces every task it registers at INFO; numexpr (under
    # rio-tiler) announces its thread count on import.
    "loggers": {
        "procrastinate": {"level": "WARNING"},
        "numexpr": {"level": "WARNING"},
        # django-axes announces itself at start-up and every failed login at
        # INFO; lockouts (WARNING) are what an operator needs to see.
        "axes": {"level": "WARNING"},
    },
}

# Debian 12 ships GDAL 3.6, which cannot block file and network access from spatial
# reference strings (gis.W001). The registry never hands user-supplied SRS text to
# GDAL: uploaded CRS definitions are parsed with pyproj (importers/), and GDAL only
# sees SRIDs from this code base.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
if not SECURE_HSTS_PRELOAD:
    # Not preloading is the choice made above (an intranet name), not an oversight.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# Survey uploads (importers/archive.py): bytes uploaded, bytes after unzipping,
# entries in a zip, and the largest compression ratio of one entry.
IMPORT_LIMITS = {
    "upload_bytes": int(os.environ.get("IMPORT_MAX_UPLOAD_BYTES", 512 * 1024**2)),
    "unpacked_bytes": int(os.environ.get("IMPORT_MAX_UNPACKED_BYTES", 2 * 1024**3)),
    "entries": int(os.environ.get("IMPORT_MAX_ENTRIES", 1000)),
    "ratio": int(os.environ.get("IMPORT_MAX_RATIO", 100)),
    # Bounded work per feature and per file: a surveyed parcel has tens to a few
    # thousand vertices; these stop a hostile file before its geometry is checked.
    "feature_rings": int(os.environ.get("IMPORT_MAX_FEATURE_RINGS", 1000)),
    "feature_vertices": int(os.environ.get("IMPORT_MAX_FEATURE_VERTICES", 100_000)),
    "file_vertices": int(os.environ.get("IMPORT_MAX_FILE_VERTICES", 20_000_000)),
}
# Imported data must fall inside this outline (WGS84 GeoJSON) grown by the margin.
IMPORT_SERVICE_AREA = Path(
    os.environ.get(
        "IMPORT_SERVICE_AREA", BASE_DIR / "fixtures" / "guangming_outline.geojson"
    )
)
IMPORT_SERVICE_MARGIN_M = float(os.environ.get("IMPORT_SERVICE_MARGIN_M", 2000))
# Large uploads are spooled to disk by Django before a view runs; this handler
# refuses them cleanly (507) when that disk is full.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "importers.upload_handlers.RoomCheckedTemporaryFileUploadHandler",
]
# Where uploads wait for their background job; a private directory.
IMPORT_UPLOAD_DIR = Path(
    os.environ.get("IMPORT_UPLOAD_DIR", BASE_DIR / "var" / "uploads")
)

# The audit trail's "from where" (registry/audit_origin.py): REMOTE_ADDR, unless
# it is one of these proxies (addresses or networks, comma-separated); then the
# client named in X-Forwarded-For. Empty: the header is never believed.
AUDIT_TRUSTED_PROXIES = env_list("AUDIT_TRUSTED_PROXIES", "")

REST_FRAMEWORK = {
    # The token first: DRF answers a missing or refused login in the words of
    # the first class, and only the token's says 401 (with WWW-Authenticate);
    # the session's would be 403, telling a script its revoked token was a
    # matter of permission.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.token_auth.TokenWithRolesAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "config.api_errors.bilingual_exception_handler",
    # JSON bodies refused bilingually, nested ones included (registry.rest.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "registry.rest.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only: DRF's browsable API would answer a browser with an HTML page
    # of the same data (user-supplied file names and values among it); people
    # read the API at /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `?format=` names export formats here, not DRF renderers.
    "URL_FORMAT_OVERRIDE": None,
}

# OpenAPI 3 of every API (REST and OGC API – Features); the docs page's Swagger UI
# comes from drf-spectacular-sidecar's static files, never from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Guangming land consolidation parcel registry API",
    "DESCRIPTION": (
        "Parcels, buildings, projects, workflow, statistics and exports. "
        "Authenticate with a session or with `Authorization: Token <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Nothing is served to anonymous users or users without a role, the API's
    # description included.
    "SERVE_PERMISSIONS": ["registry.rest.common.HoldsARole"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/(api|ogcapi)",
    # The refusals every operation can give (400, 401, 403, 404), said once.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.rest.openapi.document_refusals",
    ],
}

# Rendered map tiles, shared by every server process: a file cache by default
# (nothing else to run), Redis when TILE_CACHE_URL is set (redis://host:port/db;
# any eviction policy: the cache may forget any tile). Which drawing of a tile is
# current is kept in the database (tilesvc/cache.py), never in this cache.
_tile_cache_url = os.environ.get("TILE_CACHE_URL")
if _tile_cache_url:
    _tiles = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _tile_cache_url,
    }
else:
    _tiles = {
        "BACKEND": "tilesvc.file_cache.TileFileCache",
        "LOCATION": str(
            os.environ.get("TILE_CACHE_DIR", BASE_DIR / "var" / "cache" / "tiles")
        ),
        "OPTIONS": {"MAX_ENTRIES": 200_000},
    }
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "tiles": _tiles,
}
# A drawn tile is written to the cache by a thread of its own, after its
# response has gone (tilesvc/keeper.py); False writes it in the request's thread.
TILE_KEEP_BEHIND = os.environ.get("TILE_KEEP_BEHIND", "1") != "0"

# The base map under the planners' map (registry/map_views.py), from MAP_BASEMAP:
# - "none" (the default): no base layer at all. The map then shows the district
#   outline, the projects and the parcels on a plain ground, and needs nothing but
#   this server: right for an offline intranet.
# - "osm": raster tiles of an OpenStreetMap-style server, typically an intranet
#   mirror; its URL template ({z}/{x}/{y}, optionally {s}) is MAP_OSM_URL, which
#   has no default, and MAP_OSM_ATTRIBUTION is the credit shown.
# - "tianditu": Tianditu's Web Mercator layers (vec_w and img_w with their label
#   layers cva_w and cia_w); they are drawn in CGCS2000, which is within
#   centimetres of WGS84, so no shift is needed. Needs the browser key
#   TIANDITU_KEY; MAP_TIANDITU_URL may point at a mirror ({layer}, {tk}, {s}).
# Never offer a GCJ-02 base map (AMap/Gaode, Tencent) or Baidu's BD-09: their
# tiles are offset from WGS84 by some 300-600 m in Guangming (BD-09 by ~1 km),
# so every parcel would be drawn that far from where it is.
MAP_BASEMAP = os.environ.get("MAP_BASEMAP", "none").strip().lower()
MAP_OSM_URL = os.environ.get("MAP_OSM_URL", "")
MAP_OSM_ATTRIBUTION = os.environ.get(
    "MAP_OSM_ATTRIBUTION", "© OpenStreetMap contributors"
)
TIANDITU_KEY = os.environ.get("TIANDITU_KEY", "")
MAP_TIANDITU_URL = os.environ.get(
    "MAP_TIANDITU_URL",
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
    "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={tk}",
)

# Orthophotos (tilesvc/imagery.py): the COGs, in a private directory never served
# directly, and what one upload may be where the environment says so (converted
# by a background job; the defaults are tilesvc.imagery.DEFAULT_LIMITS).
IMAGERY_DIR = Path(os.environ.get("IMAGERY_DIR", BASE_DIR / "var" / "imagery"))
IMAGERY_LIMITS = {
    limit: int(os.environ[variable])
    for limit, variable in [
        ("upload_bytes", "IMAGERY_MAX_UPLOAD_BYTES"),
        ("side_px", "IMAGERY_MAX_SIDE_PX"),
        ("pixels", "IMAGERY_MAX_PIXELS"),
    ]
    if os.environ.get(variable)
}
