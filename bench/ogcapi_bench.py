"""Benchmark of the OGC API – Features items endpoint against raw SQL and pygeoapi.

Run by ``make bench``. On the ``--scale 100`` demo database (about 1.2 million
parcels; database ``landreg_scale``, loaded once and then reused, or any loaded
database given with ``--database``), in one run:

1. a fixed list of 50 bbox queries (CRS84 lon/lat) is drawn with a fixed seed
   inside the parcels' extent (``ST_Extent`` of the table, transformed to
   EPSG:4326); each box is a square on the ground around a point that lies in a
   parcel, and its size is found by counting with SQL (doubling from 50 m, then
   bisecting) so that it intersects 900 to 1,000 parcels: the limit of every
   request is 1,000, so no answer is cut short. The boxes and their counts are
   saved with the results;
2. three ways of answering ``bbox=…&limit=1000`` as a GeoJSON FeatureCollection
   are timed on the same boxes:

   - **ours**: ``GET /ogcapi/collections/parcels/items`` of the Django app under
     granian (2 workers), authenticated with a DRF token of a bench user
     (``bench-planner``, a superuser, made in the database if missing). It has
     no property selection, so it answers with its full set of properties
     (labels and project included): its bodies are the largest;
   - **raw SQL**: one PostgreSQL statement builds the whole FeatureCollection
     (``json_agg`` of ``ST_AsGeoJSON(ST_Transform(geom, 4326), 7)`` and the same
     five properties, first 1,000 by id), fetched as text with psycopg 3 from
     this process: the floor for any server on this database;
   - **pygeoapi** (the newest release from 0.21 to 0.24 that installs on the
     interpreter, in its own venv under ``var/bench/``) with its PostgreSQL
     provider on the same table, storage CRS EPSG:4547, the same five
     properties, under granian (2 workers); see ``bench/pygeoapi_axis.py`` for
     the one fix its provider needs for this CRS;

3. each box is asked once to warm up and to check every answer: as many
   features as SQL counts (pygeoapi transforms only the two corners of the box
   to EPSG:4547, so it may differ by a parcel or two at the edges; more than
   ``--tolerance``, 1 %, stops the run) and coordinates in lon/lat order near
   the box. Then each box is asked ``--rounds`` times (3) more, the
   endpoints interleaved box by box so that a busy machine slows all of them
   alike. The client is plain sequential ``http.client`` on the loopback
   (ours under granian as ``make demo`` serves it, pygeoapi under gunicorn's
   gthread workers, the server its documentation deploys it with; both 2
   workers × 4 threads, keeping the connection alive between requests). A latency is the
   round trip until the last byte of the body has been read;
4. p50 and p95 per endpoint, the ratio to raw SQL, and the peak RSS of each
   server (the sum of ``VmHWM`` of the server's main process and its workers, read
   just before it is stopped) are printed as a Markdown table and saved to
   ``var/bench/ogcapi.json``. The targets: ours ≤ 1.3× raw SQL, and faster than
   pygeoapi.

Every server started is stopped at the end, whatever happens (``--skip-ours``
and ``--skip-pygeoapi`` leave one out).
"""

import argparse
import http.client
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import (
    PYTHON,
    RESULTS,
    ROOT,
    database_url,
    fresh_database,
    manage,
    percentile,
    save,
)

DATABASE = "landreg_scale"
MIN_PARCELS = 1_000_000
SEED = 20261201
LIMIT = 1000
TARGET = (900, 1000)  # parcels per box: close to the limit, never above it
OURS_PATH = "/ogcapi/collections/parcels/items"
PYGEOAPI_PATH = "/collections/parcels/items"
PYGEOAPI_VENV = RESULTS / "pygeoapi-venv"
# 0.22 and later need Python 3.12; pip picks the newest that fits the interpreter.
PYGEOAPI_REQUIREMENTS = [
    "pygeoapi>=0.21,<0.25",
    "GeoAlchemy2",
    "psycopg2-binary",
    "gunicorn",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
STORAGE_CRS = "http://www.opengis.net/def/crs/EPSG/0/4547"
PROPERTIES = ["code", "land_class", "status", "street", "area_m2"]
REQUEST_TIMEOUT = 120  # seconds for one request; a slower answer is a failure
SERVER_THREADS = 4  # per worker, as in the Makefile's demo target
START_TIMEOUT = 90  # seconds for a server to answer its first request

ENVELOPE = "ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 4547)"
COUNT_SQL = f"""
    SELECT count(*) FROM registry_parcel p, (SELECT {ENVELOPE} AS e) q
    WHERE p.geom && q.e AND ST_Intersects(p.geom, q.e)"""
RAW_SQL = f"""
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'id', p.id,
            'geometry', ST_AsGeoJSON(ST_Transform(p.geom, 4326), 7)::json,
            'properties', json_build_object(
                'code', p.code, 'land_class', p.land_class, 'status', p.status,
                'street', p.street, 'area_m2', p.area_m2)
        ) ORDER BY p.id), '[]'::json))::text
    FROM (
        SELECT id, code, land_class, status, street, area_m2, geom
        FROM registry_parcel, (SELECT {ENVELOPE} AS e) q
        WHERE geom && q.e AND ST_Intersects(geom, q.e)
        ORDER BY id LIMIT %s
    ) p"""

BENCH_USER = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.update_or_create(
    username="bench-planner", defaults={"is_superuser": True, "is_staff": True})
print(Token.objects.get_or_create(user=user)[0].key)
"""


@dataclass
class Query:
    """One bbox (CRS84: min lon, min lat, max lon, max lat) and its SQL count."""

    bbox: tuple[float, float, float, float]
    half_size_m: float
    sql_count: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def expected(self) -> int:
        """Return the number of features a limit-1000 answer must hold."""
        return min(self.sql_count, LIMIT)

    @property
    def param(self) -> str:
        """Return the box as the ``bbox`` query parameter."""
        return ",".join(f"{v:.6f}" for v in self.bbox)


@dataclass
class Endpoint:
    """A way of answering a bbox query, with its timings."""

    name: str
    fetch: Callable[[Query], bytes | str]
    server: "Server | None" = None
    times_ms: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Return the nearest-rank percentile ``q`` (0–100) of the timings."""
        return percentile(self.times_ms, q)


class Server:
    """A web server started by the benchmark, in its own session."""

    def __init__(
        self, name: str, command: list[str], env: dict, cwd: Path, port: int
    ) -> None:
        """Start ``command`` on loopback ``port`` (its output to a log)."""
        self.name = name
        self.port = port
        self.log = RESULTS / f"ogcapi-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [c.replace("{port}", str(port)) for c in command]
        with self.log.open("w") as log:
            # A session of its own, so that stopping it reaches its workers too.
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, path: str, headers: dict) -> None:
        """Poll ``path`` until the server answers; fail with its log if it dies."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited ({self.process.returncode}):\n"
                    + self.log_tail()
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"{self.name} server did not answer in {START_TIMEOUT} s:\n"
            + self.log_tail()
        )

    def log_tail(self) -> str:
        """Return the end of the server's log."""
        return self.log.read_text(errors="replace")[-3000:]

    def peak_rss(self) -> tuple[float, list[float]]:
        """Return the summed and the per-process peak RSS (MB) of the server."""
        peaks = [
            _vm_hwm_kb(pid) / 1024
            for pid in [self.process.pid, *_children(self.process.pid)]
        ]
        return sum(peaks), peaks

    def stop(self) -> None:
        """Stop the server and its workers (TERM, then KILL after 20 s)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


def free_port() -> int:
    """Return a loopback port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Return the ids of the direct children of ``pid`` (the server's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces: the fields follow its last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _vm_hwm_kb(pid: int) -> int:
    """Return the peak resident set (VmHWM, kB) of process ``pid``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_checked(command: list[str], what: str, **kwargs) -> str:
    """Run ``command``; raise with its output if it fails; return its stdout."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def manage_checked(url: str, *args: str) -> str:
    """Run ``manage.py`` on ``url``; raise with its stderr if it fails."""
    result = manage(url, *args, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {args[0]} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def parcel_count(url: str) -> int | None:
    """Return the number of parcels in ``url``, or None if there is no table/DB."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.execute("SELECT count(*) FROM registry_parcel").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.OperationalError as error:
        if "does not exist" in str(error):
            return None
        raise


def prepare_database(url: str | None) -> str:
    """Return the URL of a database with the ``--scale 100`` demo, loading it."""
    if url is not None:
        count = parcel_count(url)
        if not count:
            raise SystemExit(f"--database has no parcels: {_safe(url)}")
        print(f"database {_safe(url)}: {count:,} parcels", flush=True)
        return url
    url = database_url(DATABASE)
    count = parcel_count(url)
    if count is None or count < MIN_PARCELS:
        print(
            f"database {DATABASE}: {count or 0:,} parcels; recreating it and "
            "loading the --scale 100 demo (a few minutes) …",
            flush=True,
        )
        fresh_database(DATABASE)
        manage_checked(url, "load_demo", "--scale", "100", "-v", "0")
        count = parcel_count(url)
    print(f"database {DATABASE}: {count:,} parcels", flush=True)
    return url


def _safe(url: str) -> str:
    """Return ``url`` without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def square(lon: float, lat: float, half_m: float) -> tuple[float, ...]:
    """Return the CRS84 box of half-side ``half_m`` metres around a point.

    Rounded to 6 decimals (about 0.1 m), the precision sent to every endpoint,
    so that the recorded count is that of the box as queried.
    """
    dlat = half_m / 110_574
    dlon = half_m / (111_320 * math.cos(math.radians(lat)))
    return tuple(round(v, 6) for v in (lon - dlon, lat - dlat, lon + dlon, lat + dlat))


def make_queries(conn: psycopg.Connection, n: int, seed: int) -> list[Query]:
    """Draw ``n`` boxes of 900–1,000 parcels each, deterministically."""
    extent = conn.execute(
        """SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
               SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4547),
                                   4326) AS b
               FROM registry_parcel) e"""
    ).fetchone()
    print("parcel extent (CRS84): " + ", ".join(f"{v:.4f}" for v in extent), flush=True)
    rng = random.Random(seed)
    queries: list[Query] = []
    for _ in range(n * 40):  # bounded: points off the parcels are drawn again
        if len(queries) == n:
            break
        lon = round(rng.uniform(extent[0], extent[2]), 6)
        lat = round(rng.uniform(extent[1], extent[3]), 6)
        inside = conn.execute(
            """SELECT EXISTS (SELECT 1 FROM registry_parcel WHERE ST_Intersects(
                   geom, ST_Transform(ST_SetSRID(ST_Point(%s, %s), 4326), 4547)))""",
            (lon, lat),
        ).fetchone()[0]
        if inside and (query := _size_box(conn, lon, lat)) is not None:
            queries.append(query)
    if len(queries) < n:
        raise RuntimeError(f"found only {len(queries)} of {n} boxes; is the DB full?")
    return queries


def _size_box(conn: psycopg.Connection, lon: float, lat: float) -> Query | None:
    """Size the box around a point so that it holds 900–1,000 parcels.

    The size doubles from 25 m until the box holds enough, then is bisected:
    no box much larger than needed is ever counted (those are the slow ones).
    """

    def count(half: float) -> tuple[tuple[float, ...], int]:
        bbox = square(lon, lat, half)
        return bbox, conn.execute(COUNT_SQL, bbox).fetchone()[0]

    # Invariant: fewer than 900 parcels at ``low``, at least 900 at ``high``.
    low, high = 0.0, 25.0
    bbox, n = count(high)
    while n < TARGET[0]:
        low, high = high, high * 2
        if high > 3200:  # metres: sparse land at the district's edge
            return None
        bbox, n = count(high)
    for _ in range(30):
        if n <= TARGET[1]:
            return Query(bbox, round(high, 1), n)
        middle = (low + high) / 2
        middle_bbox, middle_n = count(middle)
        if middle_n < TARGET[0]:
            low = middle
        else:
            high, bbox, n = middle, middle_bbox, middle_n
    return None  # one parcel more tips it over the band: draw another point


def fetch_http(port: int, path: str, headers: dict) -> Callable[[Query], bytes]:
    """Return a fetcher of ``path?bbox=…&limit=1000`` on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)

    def fetch(query: Query) -> bytes:
        url = f"{path}?bbox={query.param}&limit={LIMIT}"
        for attempt in (1, 2):
            try:
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                body = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError):
                # A kept-alive connection the server had closed: once more, anew.
                conn.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(
                f"GET {url} on port {port}: {response.status}\n{body[:1000]!r}"
            )
        return body

    return fetch


def same_output_sql() -> str:
    """Return raw SQL writing exactly our features (all 15 properties, labels).

    The feature expression is the application's own
    (``registry.feature_pages.parcel_feature_sql``), so this reference differs
    from our endpoint only by what lies around the SQL: HTTP, Django, the
    token check, the keyset cursor.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from registry.feature_pages import parcel_feature_sql
    from spatial.api_crs import CRS84

    return f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(f ORDER BY id), '[]'::json))::text
        FROM (
            SELECT p.id, {parcel_feature_sql(CRS84)} AS f
            FROM (
                SELECT registry_parcel.*
                FROM registry_parcel, (SELECT {ENVELOPE} AS e) q
                WHERE geom && q.e AND ST_Intersects(geom, q.e)
                ORDER BY id LIMIT %s
            ) p LEFT JOIN registry_project pr ON pr.id = p.project_id
        ) features"""


def fetch_sql(conn: psycopg.Connection, sql: str = RAW_SQL) -> Callable[[Query], str]:
    """Return a fetcher that builds the FeatureCollection in PostgreSQL."""

    def fetch(query: Query) -> str:
        return conn.execute(sql, (*query.bbox, LIMIT)).fetchone()[0]

    return fetch


def count_features(payload: bytes | str, query: Query) -> int:
    """Return the number of features of a FeatureCollection answering ``query``.

    Each feature's first vertex must lie in lon/lat order near the box: a
    server that swapped or mis-projected axes would otherwise be timed too.
    """
    document = json.loads(payload)
    if document.get("type") != "FeatureCollection":
        raise RuntimeError(f"not a FeatureCollection: {str(payload)[:300]}")
    minx, miny, maxx, maxy = query.bbox
    margin = 0.01  # degrees, about 1 km: parcels reach beyond the box
    for feature in document["features"]:
        x, y = _first_vertex(feature["geometry"]["coordinates"])[:2]
        if not (
            minx - margin <= x <= maxx + margin and miny - margin <= y <= maxy + margin
        ):
            raise RuntimeError(
                f"feature {feature.get('id')} starts at ({x}, {y}), far from "
                f"bbox={query.param}: wrong axis order or CRS"
            )
    return len(document["features"])


def _first_vertex(coordinates: list) -> list:
    """Return the first position of nested GeoJSON coordinates."""
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    return coordinates


def bench_token(url: str) -> str:
    """Return the DRF token of the bench user (a superuser), creating both."""
    return manage_checked(url, "shell", "-c", BENCH_USER).strip().splitlines()[-1]


def start_ours(
    url: str,
    token: str,
    *,
    name: str = "ours",
    ready_path: str = f"{OURS_PATH}?limit=1",
    env: dict | None = None,
    threads: int = SERVER_THREADS,
) -> Server:
    """Start the Django app on the bench DB as ``make demo`` serves it.

    granian with 2 workers of ``threads`` Python threads each (the connection
    is kept alive between requests, as a browser's is).
    """
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **(env or {}),
    }
    env.pop("DEBUG", None)  # production settings: no debug pages, no query log
    server = Server(
        name,
        [
            str(Path(PYTHON).parent / "granian"), "--interface", "wsgi",
            "config.wsgi:application", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", "2", "--blocking-threads", str(threads),
        ],
        env,
        ROOT,
        free_port(),
    )  # fmt: skip
    try:
        server.wait_ready(ready_path, {"Authorization": f"Token {token}"})
    except BaseException:
        server.stop()  # never leave a server behind
        raise
    return server


def pygeoapi_venv(venv: Path, python: str) -> tuple[Path, str]:
    """Return the bin folder and version of pygeoapi's own venv, making it."""
    bin_dir = venv / "bin"
    probe = [
        str(bin_dir / "python"), "-c",
        "import gunicorn, geoalchemy2, psycopg2, pygeoapi.provider.sql, pygeoapi;"
        "print(pygeoapi.__version__)",
    ]  # fmt: skip
    env = _pygeoapi_env()
    ready = (bin_dir / "python").exists() and subprocess.run(
        probe, capture_output=True, env=env
    ).returncode == 0
    if not ready:
        print(f"installing pygeoapi into {venv} …", flush=True)
        run_checked([python, "-m", "venv", str(venv)], "python -m venv", env=env)
        run_checked(
            [
                str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
                *PYGEOAPI_REQUIREMENTS,
            ],
            "pip install pygeoapi",
            env=env,
            timeout=1800,
        )  # fmt: skip
    version = run_checked(probe, "import pygeoapi", env=env).strip()
    return bin_dir, version


def _pygeoapi_env(**extra: str) -> dict:
    """Return an environment free of the application's venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"}
    }
    return {**env, **extra}


def pygeoapi_config(url: str, port: int, extent: list[float]) -> dict:
    """Return pygeoapi's configuration for table registry_parcel of ``url``."""
    parts = urllib.parse.urlsplit(url)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "cors": False,
            "pretty_print": False,  # compact JSON, like the other two
            "limits": {"default_items": 10, "max_items": LIMIT},
            "map": {"url": "http://127.0.0.1/", "attribution": "none"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "landreg bench",
                "description": "Parcels of the scale-100 demo, for the benchmark",
                "keywords": ["parcels"],
                "url": f"http://127.0.0.1:{port}",
                "terms_of_service": f"http://127.0.0.1:{port}",
            },
            # The OpenAPI generator reads these keys unconditionally.
            "license": {
                "name": "synthetic demo data",
                "url": f"http://127.0.0.1:{port}",
            },
            "provider": {"name": "landreg bench"},
            "contact": {"name": "landreg bench"},
        },
        "resources": {
            "parcels": {
                "type": "collection",
                "title": "Parcels",
                "description": "registry_parcel",
                "keywords": ["parcels"],
                "extents": {"spatial": {"bbox": extent, "crs": CRS84}},
                "providers": [
                    {
                        "type": "feature",
                        "name": "pygeoapi_axis.EastingFirstPostgreSQLProvider",
                        "data": {
                            "host": parts.hostname,
                            "port": parts.port or 5432,
                            "dbname": parts.path.lstrip("/"),
                            "user": parts.username,
                            "password": urllib.parse.unquote(parts.password or ""),
                            "search_path": ["public"],
                        },
                        "id_field": "id",
                        "table": "registry_parcel",
                        "geom_field": "geom",
                        "storage_crs": STORAGE_CRS,
                        "crs": [CRS84, STORAGE_CRS],
                        # pygeoapi 0.24's switch for the output transform.
                        "always_xy": True,
                        "properties": PROPERTIES,
                    }
                ],
            }
        },
    }


def start_pygeoapi(
    url: str, venv: Path, python: str, extent: list[float]
) -> tuple[Server, str]:
    """Configure pygeoapi (config, OpenAPI document) and start it under gunicorn."""
    bin_dir, version = pygeoapi_venv(venv, python)
    port = free_port()
    config = RESULTS / "pygeoapi-config.yml"
    openapi = RESULTS / "pygeoapi-openapi.yml"
    # JSON is valid YAML, so the bench needs no YAML writer; the file holds the
    # database password, so only its owner may read it.
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(json.dumps(pygeoapi_config(url, port, extent), indent=2))
    env = _pygeoapi_env(
        PYGEOAPI_CONFIG=str(config),
        PYGEOAPI_OPENAPI=str(openapi),
        PYTHONPATH=str(ROOT / "bench"),  # for pygeoapi_axis only
    )
    run_checked(
        [
            str(bin_dir / "pygeoapi"), "openapi", "generate", str(config),
            "--output-file", str(openapi),
        ],
        "pygeoapi openapi generate",
        env=env,
        timeout=300,
    )  # fmt: skip
    server = Server(
        "pygeoapi",
        [
            str(bin_dir / "gunicorn"), "pygeoapi.flask_app:APP",
            "--bind", "127.0.0.1:{port}", "--workers", "2", "--timeout", "120",
            "--threads", str(SERVER_THREADS),
        ],
        env,
        RESULTS,
        port,
    )  # fmt: skip
    server.wait_ready("/collections/parcels", {})
    return server, version


def check_counts(endpoint: Endpoint, queries: list[Query], tolerance: float) -> list:
    """Warm ``endpoint`` up on every box; fail if a count differs too much."""
    mismatches = []
    for query in queries:
        got = count_features(endpoint.fetch(query), query)
        query.counts[endpoint.name] = got
        if got != query.expected:
            mismatches.append((query.param, query.expected, got))
            if abs(got - query.expected) > tolerance * query.expected:
                raise RuntimeError(
                    f"{endpoint.name} returned {got} features for bbox={query.param}"
                    f" where SQL counts {query.sql_count} (limit {LIMIT}): the"
                    " comparison would not be fair"
                )
    return mismatches


def measure(endpoints: list[Endpoint], queries: list[Query], rounds: int) -> None:
    """Time every endpoint on every box, ``rounds`` times, interleaved."""
    for r in range(rounds):
        for i, query in enumerate(queries):
            # Rotate the order so that none always follows the same neighbour.
            shift = (i + r) % len(endpoints)
            for endpoint in endpoints[shift:] + endpoints[:shift]:
                started = time.perf_counter()
                payload = endpoint.fetch(query)
                endpoint.times_ms.append((time.perf_counter() - started) * 1000)
                endpoint.sizes.append(len(payload))
        print(f"round {r + 1}/{rounds} done", flush=True)


def report(endpoints: list[Endpoint], rounds: int) -> dict:
    """Print the Markdown table and the targets; return the figures."""
    raw = next(e for e in endpoints if e.name == "raw SQL")
    raw_p50, raw_p95 = raw.percentile(50), raw.percentile(95)
    same = next(e for e in endpoints if e.name == "raw SQL, our properties")
    same_p50, same_p95 = same.percentile(50), same.percentile(95)
    figures = {}
    print()
    print(
        "| endpoint | p50 ms | p95 ms | ratio to raw SQL p50 / p95 "
        "| ratio to raw SQL with our properties | server peak RSS MB "
        "| mean body KB |"
    )
    print("|---|---|---|---|---|---|---|")
    for endpoint in endpoints:
        p50, p95 = endpoint.percentile(50), endpoint.percentile(95)
        rss, rss_each = endpoint.server.peak_rss() if endpoint.server else (None, [])
        figures[endpoint.name] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "mean_ms": round(statistics.fmean(endpoint.times_ms), 2),
            "ratio_p50": round(p50 / raw_p50, 3),
            "ratio_p95": round(p95 / raw_p95, 3),
            "ratio_same_p50": round(p50 / same_p50, 3),
            "ratio_same_p95": round(p95 / same_p95, 3),
            "peak_rss_mb": round(rss, 1) if rss is not None else None,
            "peak_rss_mb_per_process": [round(v, 1) for v in rss_each],
            "mean_body_bytes": round(statistics.fmean(endpoint.sizes)),
            "requests": len(endpoint.times_ms),
        }
        print(
            f"| {endpoint.name} | {p50:.1f} | {p95:.1f} "
            f"| {p50 / raw_p50:.2f}× / {p95 / raw_p95:.2f}× "
            f"| {p50 / same_p50:.2f}× / {p95 / same_p95:.2f}× "
            f"| {f'{rss:.0f}' if rss is not None else '— (in-process client)'} "
            f"| {statistics.fmean(endpoint.sizes) / 1024:.0f} |"
        )
    print(f"({len(raw.times_ms) // rounds} boxes × {rounds} rounds per endpoint)")
    targets = {}
    if "ours" in figures:
        ours = figures["ours"]
        for name, p50_key, p95_key in (
            ("raw SQL (5 properties)", "ratio_p50", "ratio_p95"),
            ("raw SQL with our properties", "ratio_same_p50", "ratio_same_p95"),
        ):
            within = ours[p50_key] <= 1.3 and ours[p95_key] <= 1.3
            targets[f"ours_within_1_3x_{p50_key}"] = within
            print(
                f"target ours ≤ 1.3× {name} (p50 and p95): "
                f"{ours[p50_key]:.2f}× / {ours[p95_key]:.2f}× — "
                + ("met" if within else "NOT met")
            )
        if "pygeoapi" in figures:
            py = figures["pygeoapi"]
            faster = ours["p50_ms"] < py["p50_ms"] and ours["p95_ms"] < py["p95_ms"]
            targets["ours_faster_than_pygeoapi"] = faster
            print(
                "target ours faster than pygeoapi (p50 and p95): "
                f"{py['p50_ms'] / ours['p50_ms']:.2f}× / "
                f"{py['p95_ms'] / ours['p95_ms']:.2f}× — "
                + ("met" if faster else "NOT met")
            )
    return {"endpoints": figures, "targets": targets}


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="reuse a loaded DB URL")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="largest share by which a feature count may differ from SQL's",
    )
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--skip-pygeoapi", action="store_true")
    parser.add_argument(
        "--pygeoapi-venv",
        type=Path,
        default=PYGEOAPI_VENV,
        help="pygeoapi's own venv, made if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--pygeoapi-python",
        default="python3",
        help="interpreter for a new pygeoapi venv (3.12+ gets pygeoapi 0.24)",
    )
    args = parser.parse_args()
    if args.queries < 1 or args.rounds < 1:
        parser.error("--queries and --rounds must be at least 1")

    url = prepare_database(args.database)
    conn = psycopg.connect(url, autocommit=True)
    started = time.perf_counter()
    queries = make_queries(conn, args.queries, args.seed)
    sizes = sorted(q.half_size_m * 2 for q in queries)
    print(
        f"{len(queries)} boxes, {min(q.sql_count for q in queries)}–"
        f"{max(q.sql_count for q in queries)} parcels each, "
        f"{sizes[0]:.0f}–{sizes[-1]:.0f} m wide "
        f"(chosen in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    extent = [
        min(q.bbox[0] for q in queries) - 0.01,
        min(q.bbox[1] for q in queries) - 0.01,
        max(q.bbox[2] for q in queries) + 0.01,
        max(q.bbox[3] for q in queries) + 0.01,
    ]
    endpoints = [
        Endpoint("raw SQL", fetch_sql(conn)),
        Endpoint("raw SQL, our properties", fetch_sql(conn, same_output_sql())),
    ]
    servers: list[Server] = []
    pygeoapi_version = None
    mismatches = {}
    try:
        if not args.skip_ours:
            token = bench_token(url)
            server = start_ours(url, token)
            servers.append(server)
            headers = {
                "Authorization": f"Token {token}",
                "Accept": "application/geo+json",
            }
            endpoints.append(
                Endpoint("ours", fetch_http(server.port, OURS_PATH, headers), server)
            )
        if not args.skip_pygeoapi:
            server, pygeoapi_version = start_pygeoapi(
                url, args.pygeoapi_venv, args.pygeoapi_python, extent
            )
            servers.append(server)
            headers = {"Accept": "application/geo+json"}
            print(f"pygeoapi {pygeoapi_version} on port {server.port}", flush=True)
            endpoints.append(
                Endpoint(
                    "pygeoapi", fetch_http(server.port, PYGEOAPI_PATH, headers), server
                )
            )
        for endpoint in endpoints:
            print(f"warming up {endpoint.name} and checking counts …", flush=True)
            mismatches[endpoint.name] = check_counts(endpoint, queries, args.tolerance)
            if mismatches[endpoint.name]:
                print(
                    f"  {len(mismatches[endpoint.name])} boxes differ from the SQL "
                    f"count (within {args.tolerance:.0%}), e.g. "
                    f"{mismatches[endpoint.name][:3]}",
                    flush=True,
                )
        measure(endpoints, queries, args.rounds)
        results = report(endpoints, args.rounds)
    finally:
        for server in servers:
            server.stop()
        conn.close()
    path = save(
        "ogcapi",
        {
            "database": DATABASE if args.database is None else _safe(args.database),
            "seed": args.seed,
            "limit": LIMIT,
            "rounds": args.rounds,
            "pygeoapi_version": pygeoapi_version,
            **results,
            "count_mismatches": mismatches,
            "queries": [
                {
                    "bbox": q.bbox,
                    "width_m": q.half_size_m * 2,
                    "sql_count": q.sql_count,
                    "counts": q.counts,
                }
                for q in queries
            ],
        },
    )
    print(f"saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
