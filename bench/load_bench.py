"""Load benchmark: mixed traffic from 50 users for 2 minutes, with a large import.

Run by ``make bench``; loopback only, bounded in time (``--run-time``) and in
users (``--users``). In one run:

1. the ``--scale 10`` demo (about 120,000 parcels) in database ``landreg_load``:
   reused when it holds the demo and no earlier run's import, else recreated
   (migrate + ``load_demo --scale 10``, about a minute);
2. a bench user (``bench-load``, a superuser) with an API token and a login
   session, and a project ``LOAD`` on a square of land with no parcel yet (found
   with SQL in the service area's margin outside the district, so that the
   import's overlap checks accept it);
3. the app served as ``make demo`` serves it: granian, 2 workers of 4 threads
   (``--threads``), plus one procrastinate worker; an empty tile cache of its own;
4. what the users ask, drawn with a fixed seed from the database: 60 tiles
   (z14–z17) around random parcels, asked once before the run so that they are
   cached, and a pool of other z17/z18 tiles around other parcels, each asked
   once during the run (drawn by that request); 300 boxes of 300–600 m around
   parcels for ``/api/parcels/?bbox=`` and ``/ogcapi/collections/parcels/items``;
   the six projects' map pages; ``/api/statistics/progress/``. The users are in
   ``bench/locustfile.py``: locust 2, headless, 50 users, 0.5–1.5 s between
   actions, weights 40 cached tiles, 10 uncached, 10 + 10 bbox, 5 pages, 5
   statistics. Locust rather than wrk: mixed kinds with their own percentiles,
   a login cookie and a token, and a pool of tiles each asked once, without
   writing Lua;
5. 15 s into the run, ``--import-rows`` (50,000) generated parcels are uploaded
   through ``POST /api/imports/`` with ``commit=true`` and committed by the
   worker while the users keep going; the batch is followed to its end (after
   the users stop if need be) and the registry counted: the project must hold
   exactly that many parcels, each with one history row;
6. throughput, p50/p95/p99 per kind and the error rate (locust's own figures,
   from its CSV), what the tile cache said for each tile request, the import's
   duration and counts are printed as Markdown and saved to
   ``var/bench/load.json``. Targets: no errors, cached tiles p95 < 100 ms, the
   import committed with the right counts (exit status 1 if not).

Every process started is stopped at the end, whatever happens.
"""

import argparse
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import requests

from bench.common import PYTHON, RESULTS, ROOT, database_url, fresh_database, save
from bench.ogcapi_bench import (
    SERVER_THREADS,
    Server,
    _safe,
    manage_checked,
    parcel_count,
    start_ours,
)
from tests.importers import corpus

DATABASE = "landreg_load"
MIN_PARCELS = 100_000
SEED = 20261201
PROJECT = "LOAD"
SQUARE_M = 1600  # side of the import's empty square
CACHED_TILES = 60
UNCACHED_TILES = 6000
BBOXES = 300
IMPORT_AFTER_S = 15
IMPORT_TIMEOUT_S = 900

SETUP = """
import json
from importlib import import_module
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model)
from django.contrib.gis.geos import MultiPolygon, Polygon
from rest_framework.authtoken.models import Token
from registry.models import Project
x, y, half = {x}, {y}, {half}
user, _ = get_user_model().objects.update_or_create(
    username="bench-load", defaults={{"is_superuser": True, "is_staff": True}})
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.set_expiry(4 * 3600)
session.create()
Project.objects.get_or_create(code="{project}", defaults=dict(
    name_zh="负载测试", name_en="Load test", kind="other", street="guangming",
    boundary=MultiPolygon(Polygon.from_bbox(
        (x - half, y - half, x + half, y + half)), srid=4547),
    planned_area_m2=(2 * half) ** 2))
print(json.dumps({{
    "token": Token.objects.get_or_create(user=user)[0].key,
    "session": session.session_key,
    "session_cookie": settings.SESSION_COOKIE_NAME,
    "projects": list(Project.objects.exclude(code="{project}")
                     .order_by("code").values_list("code", flat=True)),
}}))
"""

# A square of the service area's margin (the district grown by 1.9 km, less a
# 30 m seam along its edge) that no parcel touches: the demo covers the district.
EMPTY_SQUARE_SQL = """
WITH outline AS (
    SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(%(outline)s), 4326), 4547) g
), band AS (
    SELECT ST_Difference(ST_Buffer(g, 1900), ST_Buffer(g, 30)) AS b FROM outline
), candidate AS (
    SELECT x, y, ST_MakeEnvelope(x - %(h)s, y - %(h)s, x + %(h)s, y + %(h)s, 4547) e
    FROM generate_series(480000, 506000, 200) x,
         generate_series(2505000, 2531000, 200) y
)
SELECT x, y FROM candidate, band
WHERE ST_Within(e, b)
  AND NOT EXISTS (SELECT 1 FROM registry_parcel p WHERE p.geom && e)
ORDER BY x, y LIMIT 1
"""

CENTROIDS_SQL = """
SELECT ST_X(c), ST_Y(c) FROM (
    SELECT ST_Transform(ST_PointOnSurface(geom), 4326) AS c
    FROM registry_parcel TABLESAMPLE BERNOULLI (10) REPEATABLE (%(seed)s)
    ORDER BY md5(id::text) LIMIT %(n)s
) points
"""


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """Return the Web-Mercator XYZ tile holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def tile_path(tile: tuple[int, int, int]) -> str:
    """Return the URL path of a parcel tile."""
    return "/tiles/parcels/{}/{}/{}.mvt".format(*tile)


def prepare_database(url: str) -> None:
    """Make sure ``url`` holds the scale-10 demo and nothing of an earlier run."""
    count = parcel_count(url)
    fresh = count is not None and count >= MIN_PARCELS
    if fresh:
        with psycopg.connect(url) as conn:
            fresh = not conn.execute(
                "SELECT EXISTS (SELECT 1 FROM registry_project WHERE code = %s)",
                [PROJECT],
            ).fetchone()[0]
    if fresh:
        # The schema may have moved on since the demo was loaded.
        manage_checked(url, "migrate", "--no-input", "-v", "0")
        print(f"database {DATABASE}: {count:,} parcels (reused)", flush=True)
        return
    print(
        f"database {DATABASE}: recreating it with the --scale 10 demo (≈ 1 min) …",
        flush=True,
    )
    fresh_database(DATABASE)
    manage_checked(url, "load_demo", "--scale", "10", "-v", "0")
    print(f"database {DATABASE}: {parcel_count(url):,} parcels", flush=True)


def empty_square(url: str) -> tuple[float, float]:
    """Return the centre of a square of ``SQUARE_M`` with no parcel in it."""
    outline = json.loads((ROOT / "fixtures" / "guangming_outline.geojson").read_text())[
        "geometry"
    ]
    with psycopg.connect(url) as conn:
        found = conn.execute(
            EMPTY_SQUARE_SQL, {"outline": json.dumps(outline), "h": SQUARE_M / 2}
        ).fetchone()
    if found is None:
        raise SystemExit("no empty square for the import in the service area")
    return float(found[0]), float(found[1])


def traffic(url: str, square: tuple[float, float]) -> dict:
    """Draw the tiles and boxes the users will ask (fixed seed)."""
    rng = random.Random(SEED)
    with psycopg.connect(url) as conn:
        points = conn.execute(
            CENTROIDS_SQL, {"seed": SEED, "n": UNCACHED_TILES + CACHED_TILES * 4}
        ).fetchall()
        corner = conn.execute(
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT "
            "ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4547), 4326) b) q",
            [
                square[0] - SQUARE_M / 2 - 500,
                square[1] - SQUARE_M / 2 - 500,
                square[0] + SQUARE_M / 2 + 500,
                square[1] + SQUARE_M / 2 + 500,
            ],
        ).fetchone()
    rng.shuffle(points)

    def near_import(lon: float, lat: float) -> bool:
        # The import redraws the tiles over its square: keep clear of them.
        return corner[0] - 0.05 <= lon <= corner[2] + 0.05 and (
            corner[1] - 0.05 <= lat <= corner[3] + 0.05
        )

    clear = [p for p in points if not near_import(*p)]
    cached = sorted(
        {tile_of(lon, lat, rng.choice((14, 15, 16, 17))) for lon, lat in clear[:60]}
    )
    uncached: list[tuple[int, int, int]] = []
    seen = set(cached)
    for lon, lat in clear[60:]:
        tile = tile_of(lon, lat, rng.choice((17, 18)))
        if tile not in seen:
            seen.add(tile)
            uncached.append(tile)
    bboxes = []
    for lon, lat in clear[: BBOXES * 2 : 2]:
        half = rng.uniform(150, 300)
        dlat = half / 110_574
        dlon = half / (111_320 * math.cos(math.radians(lat)))
        bboxes.append(
            f"{lon - dlon:.6f},{lat - dlat:.6f},{lon + dlon:.6f},{lat + dlat:.6f}"
        )
    return {
        "cached_tiles": [tile_path(t) for t in cached],
        "uncached_tiles": [tile_path(t) for t in uncached],
        "bboxes": bboxes,
    }


def survey_file(work: Path, rows: int, square: tuple[float, float]) -> Path:
    """Write ``rows`` generated parcels (GBK shapefile, zipped) in the square."""
    # The generator fills a square around its centre; point it at the empty one.
    corpus.GENERATOR_CENTRE = square
    corpus.GENERATOR_EXTENT = SQUARE_M - 20
    return corpus.generate_gbk_shapefile(work, rows, seed=SEED, name="load_parcels")


class Import(threading.Thread):
    """Upload the survey through the API with commit, and follow the batch."""

    def __init__(self, port: int, token: str, path: Path) -> None:
        super().__init__(daemon=True)
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Token {token}"}
        self.path = path
        self.result: dict = {}

    def run(self) -> None:
        """Post the file, then poll the batch until it ends."""
        started = time.monotonic()
        try:
            with self.path.open("rb") as handle:
                response = requests.post(
                    f"{self.base}/api/imports/",
                    headers=self.headers,
                    files={"file": (self.path.name, handle, "application/zip")},
                    data={"project": PROJECT, "layer": "parcels", "commit": "true"},
                    timeout=300,
                )
            self.result["upload_s"] = time.monotonic() - started
            if response.status_code != 202:
                self.result["error"] = f"{response.status_code}: {response.text[:500]}"
                return
            batch = response.json()
            deadline = started + IMPORT_TIMEOUT_S
            while batch["state"] not in ("committed", "refused", "failed", "checked"):
                if time.monotonic() > deadline:
                    self.result["error"] = f"not finished in {IMPORT_TIMEOUT_S} s"
                    break
                time.sleep(1)
                batch = requests.get(
                    f"{self.base}/api/imports/{batch['id']}/",
                    headers=self.headers,
                    timeout=60,
                ).json()
            self.result.update(
                seconds=time.monotonic() - started,
                batch=batch["id"],
                state=batch["state"],
                created=batch.get("created"),
                updated=batch.get("updated"),
                unchanged=batch.get("unchanged"),
                error_text=batch.get("error") or "",
            )
        except Exception as error:  # reported, never lost in the thread
            self.result["error"] = f"{type(error).__name__}: {error}"


def locust_figures(prefix: Path) -> dict:
    """Return locust's per-kind figures from its ``_stats.csv``."""
    figures = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            figures[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
                "mean_ms": float(row["Average Response Time"]),
            }
    return figures


def registry_counts(url: str) -> dict:
    """Return the LOAD project's parcels, distinct codes and history rows."""
    with psycopg.connect(url) as conn:
        parcels, codes = conn.execute(
            "SELECT count(*), count(DISTINCT p.code) FROM registry_parcel p "
            "JOIN registry_project pr ON pr.id = p.project_id WHERE pr.code = %s",
            [PROJECT],
        ).fetchone()
        history = conn.execute(
            "SELECT count(*) FROM registry_parcelstatuschange h JOIN registry_parcel "
            "p ON p.id = h.parcel_id JOIN registry_project pr ON pr.id = p.project_id "
            "WHERE pr.code = %s",
            [PROJECT],
        ).fetchone()[0]
    return {"parcels": parcels, "distinct_codes": codes, "history_rows": history}


def main() -> int:
    """Run the benchmark; return 1 when a target of correctness is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--run-time", default="2m")
    parser.add_argument("--import-rows", type=int, default=50_000)
    parser.add_argument(
        "--threads",
        type=int,
        default=SERVER_THREADS,
        help="Python threads per server worker (4 as make demo runs)",
    )
    args = parser.parse_args()

    url = database_url(DATABASE)
    prepare_database(url)
    square = empty_square(url)
    print(f"import square: {SQUARE_M} m around {square}", flush=True)
    setup = json.loads(
        manage_checked(
            url,
            "shell",
            "-c",
            SETUP.format(x=square[0], y=square[1], half=SQUARE_M / 2, project=PROJECT),
        ).splitlines()[-1]
    )
    work = Path(tempfile.mkdtemp(prefix="landreg-load-"))
    print(f"generating {args.import_rows:,} parcels …", flush=True)
    survey = survey_file(work, args.import_rows, square)
    config = {**setup, **traffic(url, square)}
    config_path = RESULTS / "load-config.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config))
    tiles_dir = RESULTS / "load-tiles"
    shutil.rmtree(tiles_dir, ignore_errors=True)
    env = {"TILE_CACHE_DIR": str(tiles_dir), "IMPORT_UPLOAD_DIR": str(work / "up")}

    server = worker = locust = None
    try:
        server = start_ours(
            url,
            config["token"],
            name="load",
            ready_path="/tiles/parcels.json",
            env=env,
            threads=args.threads,
        )
        worker = Server(
            "load-worker",
            [PYTHON, "manage.py", "procrastinate", "worker", "--concurrency", "1"],
            {**os.environ, "DATABASE_URL": url, **env},
            ROOT,
            0,
        )
        # Draw the cached tiles once, so that the run finds them in the cache.
        session = requests.Session()
        headers = {"Authorization": f"Token {config['token']}"}
        base = f"http://127.0.0.1:{server.port}"
        for path in config["cached_tiles"]:
            response = session.get(base + path, headers=headers, timeout=60)
            if response.status_code not in (200, 204):
                raise RuntimeError(f"{path}: {response.status_code}")
        print(
            f"{len(config['cached_tiles'])} tiles cached, "
            f"{len(config['uncached_tiles'])} in the never-drawn pool, "
            f"{len(config['bboxes'])} boxes; {args.users} users for {args.run_time} …",
            flush=True,
        )
        prefix = RESULTS / "load"
        cache_out = RESULTS / "load-tile-cache.json"
        locust = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "locust"),
                "-f", str(ROOT / "bench" / "locustfile.py"),
                "--headless", "--only-summary",
                "-u", str(args.users), "-r", str(args.users),
                "--run-time", args.run_time, "--stop-timeout", "30",
                "--host", base, "--csv", str(prefix),
                "--loglevel", "WARNING",
            ],
            env={
                **os.environ,
                "LOAD_CONFIG": str(config_path),
                "LOAD_CACHE_OUT": str(cache_out),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        time.sleep(IMPORT_AFTER_S)
        started_import = time.monotonic()
        importing = Import(server.port, config["token"], survey)
        importing.start()
        locust_output, _ = locust.communicate(timeout=3600)
        if locust.returncode not in (0, 1):  # 1: some requests failed
            raise RuntimeError(f"locust failed:\n{locust_output[-3000:]}")
        users_done = time.monotonic() - started_import
        importing.join(timeout=IMPORT_TIMEOUT_S)
        imported = {
            **importing.result,
            "rows": args.import_rows,
            "finished_after_users_s": max(
                0.0, importing.result.get("seconds", 0) - users_done
            ),
        }
        rss_total, rss_each = server.peak_rss()
    finally:
        for process in (locust,):
            if process is not None and process.poll() is None:
                process.kill()
        for running in (worker, server):
            if running is not None:
                running.stop()
    figures = locust_figures(prefix)
    counts = registry_counts(url)
    tile_cache = json.loads(cache_out.read_text()) if cache_out.exists() else {}
    cache_seen = tile_cache.get("seen", {})
    total = figures.pop("Aggregated")
    import_ok = (
        imported.get("state") == "committed"
        and imported.get("created") == args.import_rows
        and counts
        == {
            "parcels": args.import_rows,
            "distinct_codes": args.import_rows,
            "history_rows": args.import_rows,
        }
    )
    cached = figures.get("tile, cached", {})
    result = {
        "database": _safe(url),
        "users": args.users,
        "run_time": args.run_time,
        "server": f"granian, 2 workers × {args.threads} thread(s); 1 "
        "procrastinate worker",
        "kinds": figures,
        "total": total,
        "error_rate": total["failures"] / max(1, total["requests"]),
        "tile_cache_seen": cache_seen,
        "tile_view_in_server": tile_cache.get("in_server", {}),
        "import": imported,
        "registry_after_import": counts,
        "server_peak_rss_mb": rss_total,
        "server_peak_rss_each_mb": rss_each,
        "targets": {
            "no_errors": total["failures"] == 0,
            "cached_tiles_p95_under_100_ms": cached.get("p95_ms", 1e9) < 100,
            "import_committed_with_correct_counts": import_ok,
        },
    }
    save("load" if args.threads == 4 else f"load-threads{args.threads}", result)
    print()
    print(
        f"{args.users} users, {args.run_time}: {total['requests']:,} requests, "
        f"{total['rps']:.1f} requests/s, {total['failures']} errors "
        f"({result['error_rate']:.2%})"
    )
    print()
    print("| kind | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, f in sorted(figures.items()):
        print(
            f"| {name} | {f['requests']:,} | {f['rps']:.1f} | {f['p50_ms']:.0f} "
            f"| {f['p95_ms']:.0f} | {f['p99_ms']:.0f} | {f['failures']} |"
        )
    print()
    print(f"tile cache said: {cache_seen}")
    print(f"tile view, in the server (Server-Timing): {tile_cache.get('in_server')}")
    print(f"import: {imported}")
    print(f"registry after the import: {counts}")
    each = ", ".join(f"{r:.0f}" for r in rss_each)
    print(f"server peak RSS: {rss_total:.0f} MB ({each})")
    print(f"targets: {result['targets']}")
    print(locust_output[-1500:] if total["failures"] else "", end="")
    return 0 if import_ok else 1


if __name__ == "__main__":
    sys.exit(main())
