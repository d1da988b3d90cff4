"""Benchmark of the vector-tile endpoint against its own SQL, cached and uncached.

Run by ``make bench``. On the ``--scale 100`` demo database (``landreg_scale``,
loaded once and reused, as the OGC API benchmark does), in one run:

1. a fixed list of parcel tiles, ``--per-zoom`` (20) at each of z12–z17, drawn
   with a fixed seed around points that lie in parcels across Guangming;
2. **raw SQL**: the tile's one statement (``tilesvc.vector.tile_sql``, with the
   same session setting as the application's connections, no parallel workers)
   run with psycopg 3 from this process, client-side binding like Django's; the
   same tiles, no filters, as the endpoint is asked for. The endpoint's own
   statement wraps this one in the caller's check (``vector.gated_tile_sql``),
   so the check is counted against ours;
3. **ours, uncached**: ``GET /tiles/parcels/{z}/{x}/{y}.mvt`` with an API token
   of the app under granian (2 workers × 4 threads, as ``make demo`` serves it)
   with a tile cache of its own, emptied
   before each of ``--rounds`` (5) rounds, so every request renders (the server
   keeps a drawn tile after sending it, so the round waits a moment before
   emptying). Raw SQL and ours are interleaved tile by tile, taking turns at
   going first;
4. **ours, cached**: the same tiles ``--rounds`` more times, all cache hits.
   Client latency over loopback and the server's own time (the view's
   ``Server-Timing`` header) are both reported;
5. **throughput**: ``wrk`` (Debian's package; bounded: ``--duration`` 15 s,
   8 connections, loopback only) over the cached tiles, requests per second;
6. **tile sizes**: every parcel tile covering the parcels' extent at z12–z17,
   rendered in SQL; the largest per zoom (the target: none over 500 KB).

Targets: uncached ≤ 1.2× the raw SQL; cached p50 ≤ 5 ms in the server; no tile
over 500 KB. Results go to ``var/bench/tiles.json`` and are printed as Markdown.
"""

import argparse
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, ROOT, percentile, save
from bench.ogcapi_bench import bench_token, prepare_database, start_ours

ZOOMS = range(12, 18)
SEED = 440311
LIMIT_KB = 500


def setup_django(url: str):
    """Set Django up on the bench database, for the tile SQL and tile math."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from tilesvc import vector

    return vector


def pick_tiles(conn, vector, per_zoom: int, seed: int) -> list[tuple[int, int, int]]:
    """Return tiles around random parcels (seeded), ``per_zoom`` at each zoom."""
    rng = random.Random(seed)
    ids = conn.execute("SELECT min(id), max(id) FROM registry_parcel").fetchone()
    tiles = []
    for z in ZOOMS:
        chosen: set[tuple[int, int, int]] = set()
        # The district spans only a handful of z12 tiles: stop trying after a
        # bounded number of draws.
        for _ in range(per_zoom * 10):
            if len(chosen) == per_zoom:
                break
            lon, lat = conn.execute(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform("
                "ST_PointOnSurface(geom), 4326) AS c FROM registry_parcel "
                "WHERE id >= %s ORDER BY id LIMIT 1) t",
                [rng.randint(*ids)],
            ).fetchone()
            tile = vector.TMS.tile(lon, lat, z)
            chosen.add((tile.z, tile.x, tile.y))
        tiles += sorted(chosen)
    return tiles


def raw_tile(conn, vector, z: int, x: int, y: int) -> bytes:
    """Build one tile with the endpoint's own statement, straight in psycopg."""
    sql, params = vector.tile_sql(vector.PARCELS, z, x, y, {})
    row = conn.execute(sql, params).fetchone()
    return bytes(row[0] or b"")


def get_tile(conn: http.client.HTTPConnection, path: str, headers: dict):
    """Return (status, body, server ms, cache) of one tile request."""
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    timing = response.getheader("Server-Timing", "")
    server_ms = float(timing.split("dur=")[1].split(";")[0]) if "dur=" in timing else 0
    return response.status, body, server_ms, response.getheader("X-Tile-Cache")


def tile_sizes(conn, vector) -> dict[int, dict]:
    """Render every tile over the parcels' extent at each zoom; the largest."""
    west, south, east, north = conn.execute(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT "
        "ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4547), 4326)::box2d"
        " AS b FROM registry_parcel) t"
    ).fetchone()
    sizes = {}
    for z in ZOOMS:
        largest, count, started = (0, ""), 0, time.perf_counter()
        for tile in vector.TMS.tiles(west, south, east, north, [z]):
            size = len(raw_tile(conn, vector, tile.z, tile.x, tile.y))
            count += 1
            largest = max(largest, (size, f"{tile.z}/{tile.x}/{tile.y}"))
        sizes[z] = {
            "tiles": count,
            "largest_kb": round(largest[0] / 1024, 1),
            "largest_tile": largest[1],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"z{z}: {count} tiles, largest {largest[0] / 1024:.0f} KB", flush=True)
    return sizes


def throughput(port: int, paths: list[str], token: str, seconds: int) -> dict:
    """Return requests/s and latency of wrk over the cached tiles (loopback)."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    script = Path(tempfile.mkdtemp()) / "tiles.lua"
    quoted = ", ".join(f'"{p}"' for p in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        f'  return wrk.format("GET", paths[i], {{["Authorization"] = "Token {token}"}})'
        "\nend\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rps = float(out.split("Requests/sec:")[1].split()[0])
    p50 = out.split("50%")[1].split()[0]
    p99 = out.split("99%")[1].split()[0]
    return {"requests_per_s": rps, "p50": p50, "p99": p99, "connections": 8}


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="reuse a loaded DB URL")
    parser.add_argument("--per-zoom", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--skip-sizes", action="store_true")
    args = parser.parse_args()
    url = prepare_database(args.database)
    vector = setup_django(url)
    # Client-side binding, as Django's psycopg backend does: the very same SQL
    # text reaches the server, literals and all (so the planner sees the same
    # constants and picks the same partial index).
    # ... and the session setting the application's connections have.
    conn = psycopg.connect(
        url,
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
        options="-c max_parallel_workers_per_gather=0",
    )
    tiles = pick_tiles(conn, vector, args.per_zoom, SEED)
    token = bench_token(url)
    cache_dir = Path(tempfile.mkdtemp(prefix="landreg-tiles-"))
    headers = {"Authorization": f"Token {token}"}
    # A tile cache of the server's own, in the file backend (no Redis).
    os.environ.pop("TILE_CACHE_URL", None)
    server = start_ours(
        url,
        token,
        name="tiles",
        ready_path="/tiles/parcels.json",
        env={"TILE_CACHE_DIR": str(cache_dir)},
    )
    raw_ms, uncached_ms, uncached_server, cached_ms, cached_server = [], [], [], [], []
    try:
        http_conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        # Warm both workers up (imports, connections) on tiles outside the list.
        for _ in range(4):
            get_tile(http_conn, "/tiles/parcels/18/0/0.mvt", headers)
        for r in range(args.rounds):
            # Every round starts from an empty cache: each request renders.
            # The server keeps a drawn tile after sending it: let the last
            # one of the previous round land before emptying the cache.
            time.sleep(0.5)
            for entry in cache_dir.glob("*"):
                entry.unlink(missing_ok=True)
            for i, (z, x, y) in enumerate(tiles):
                path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
                # Alternate who goes first: the second reads pages the first
                # warmed.
                for turn in ((i + r) % 2, 1 - (i + r) % 2):
                    started = time.perf_counter()
                    if turn == 0:
                        expected = raw_tile(conn, vector, z, x, y)
                        raw_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        status, body, server_ms, source = get_tile(
                            http_conn, path, headers
                        )
                        uncached_ms.append((time.perf_counter() - started) * 1000)
                        uncached_server.append(server_ms)
                if source != "miss" or body != expected:
                    raise RuntimeError(f"{path}: {status} {source}, not the raw tile")
        for _ in range(args.rounds):
            for z, x, y in tiles:
                path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
                started = time.perf_counter()
                status, body, server_ms, source = get_tile(http_conn, path, headers)
                cached_ms.append((time.perf_counter() - started) * 1000)
                cached_server.append(server_ms)
                if source != "hit":
                    raise RuntimeError(f"{path}: {status} {source}, not a cache hit")
        http_conn.close()
        paths = [f"/tiles/parcels/{z}/{x}/{y}.mvt" for z, x, y in tiles]
        load = throughput(server.port, paths, token, args.duration)
        rss, _ = server.peak_rss()
    finally:
        server.stop()
        shutil.rmtree(cache_dir, ignore_errors=True)
    sizes = {} if args.skip_sizes else tile_sizes(conn, vector)
    conn.close()
    figures = {
        "raw SQL": (raw_ms, None),
        "ours, uncached": (uncached_ms, uncached_server),
        "ours, cached": (cached_ms, cached_server),
    }
    raw_p50, raw_p95 = percentile(raw_ms, 50), percentile(raw_ms, 95)
    print("| tiles | p50 ms | p95 ms | vs raw SQL p50 / p95 | in the server p50 |")
    print("|---|---|---|---|---|")
    results = {}
    for name, (client, server_side) in figures.items():
        p50, p95 = percentile(client, 50), percentile(client, 95)
        inside = percentile(server_side, 50) if server_side else None
        results[name] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "server_p50_ms": round(inside, 2) if inside is not None else None,
            "ratio_p50": round(p50 / raw_p50, 3),
            "ratio_p95": round(p95 / raw_p95, 3),
            "requests": len(client),
        }
        print(
            f"| {name} | {p50:.1f} | {p95:.1f} | {p50 / raw_p50:.2f}× / "
            f"{p95 / raw_p95:.2f}× | {f'{inside:.2f}' if inside is not None else '—'} |"
        )
    rounds_of_tiles = tiles * args.rounds
    per_zoom = {
        z: {
            name: round(
                statistics.median(
                    t
                    for tile, t in zip(rounds_of_tiles, times, strict=True)
                    if tile[0] == z
                ),
                1,
            )
            for name, times in (("raw", raw_ms), ("uncached", uncached_ms))
        }
        for z in ZOOMS
    }
    print("p50 by zoom (ms), raw SQL / ours uncached:")
    for z, row in per_zoom.items():
        print(f"  z{z}: {row['raw']} / {row['uncached']}")
    print(f"throughput (wrk, cached, 2 workers): {load}; server peak RSS {rss:.0f} MB")
    uncached = results["ours, uncached"]
    print(
        f"target uncached ≤ 1.2× raw SQL: {uncached['ratio_p50']:.2f}× / "
        f"{uncached['ratio_p95']:.2f}× — "
        + (
            "met"
            if max(uncached["ratio_p50"], uncached["ratio_p95"]) <= 1.2
            else "NOT met"
        )
    )
    cached = results["ours, cached"]["server_p50_ms"]
    print(f"target cached p50 ≤ 5 ms in the server: {cached:.2f} ms — "
          + ("met" if cached <= 5 else "NOT met"))  # fmt: skip
    if sizes:
        largest = max(s["largest_kb"] for s in sizes.values())
        print(
            f"target no tile over {LIMIT_KB} KB: largest {largest:.0f} KB — "
            + ("met" if largest <= LIMIT_KB else "NOT met")
        )
    path = save(
        "tiles",
        {
            "tiles": [f"{z}/{x}/{y}" for z, x, y in tiles],
            "latency": results,
            "p50_by_zoom_ms": per_zoom,
            "throughput": load,
            "server_peak_rss_mb": round(rss, 1),
            "sizes": sizes,
        },
    )
    print(
        f"saved {path.relative_to(ROOT)}  (server log: {RESULTS / 'ogcapi-tiles.log'})"
    )


if __name__ == "__main__":
    main()
