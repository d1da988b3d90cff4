"""Benchmark of the banked-land GeoJSON export against ogr2ogr, and of statistics.

Run by ``make bench`` after the import benchmark. On a scratch database with the
``--scale 100`` demo (about 1.2 million parcels), a bench-only step banks
1,000,000 of them with SQL, stamped "now" (the demo banks only project land,
which does not grow with the scale): the first 100,000 with a January banking
date, the rest in June. Then, in the same run:

1. ``export_banked`` GeoJSON of the 100,000 and of all 1,000,000, timed with GNU
   time (wall clock, peak RSS);
2. ``ogr2ogr -f GeoJSON`` of the same rows and columns from the same table;
3. the statistics (``registry.statistics.area_cells``) 20 times in one process:
   p50 and p95.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, fresh_database, manage, save, timed

BANK = """
from django.db import connection
with connection.cursor() as c:
    c.execute("SELECT count(*) FROM registry_parcel WHERE bank_ref LIKE 'BENCH-%%'")
    already = c.fetchone()[0] >= BANKED
with connection.cursor() as c:
  if not already:  # banking is done once per database
    c.execute('''
        CREATE TEMP TABLE to_bank AS
        SELECT id, row_number() OVER (ORDER BY id) AS n FROM registry_parcel
        WHERE status <> 'banked' ORDER BY id LIMIT %s''', [BANKED])
    c.execute('''
        UPDATE registry_parcel p SET status = 'banked',
               banked_on = CASE WHEN b.n <= %s THEN date '2025-01-15'
                                ELSE date '2025-06-15' END,
               bank_ref = 'BENCH-' || b.n
        FROM to_bank b WHERE b.id = p.id''', [FIRST])
with connection.cursor() as c:
    # The banking rows of the history (bench data: "now", after every demo row).
    c.execute('''
        INSERT INTO registry_parcelstatuschange
            (parcel_id, move, from_status, to_status, actor_id, at, reason,
             evidence_ref, banked_on, bank_ref)
        SELECT p.id, 'advance', 'cleared', 'banked',
               (SELECT id FROM auth_user ORDER BY id LIMIT 1),
               now(), '', '', p.banked_on, p.bank_ref
        FROM registry_parcel p
        WHERE p.bank_ref LIKE 'BENCH-%%' AND NOT EXISTS (
            SELECT 1 FROM registry_parcelstatuschange h
            WHERE h.parcel_id = p.id AND h.bank_ref = p.bank_ref)''', [])
    c.execute("ANALYZE registry_parcel")
    c.execute("ANALYZE registry_parcelstatuschange")
from django.contrib.auth import get_user_model
get_user_model().objects.update_or_create(
    username="bench-analyst", defaults={"is_superuser": True})
"""

TIMING = """
import statistics, time
from registry.statistics import area_cells
times = []
for _ in range(20):
    started = time.perf_counter()
    area_cells()
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(f"{statistics.median(times):.1f} {times[int(len(times) * 0.95) - 1]:.1f}")
"""


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default=None, help="reuse a loaded DB URL")
    parser.add_argument("--first", type=int, default=100_000)
    parser.add_argument("--banked", type=int, default=1_000_000)
    args = parser.parse_args()
    url = args.database
    if url is None:
        url = fresh_database("landreg_bench_export")
        print("loading the --scale 100 demo (about 5 minutes) …", flush=True)
        manage(url, "load_demo", "--scale", "100", "-v", "0")
    bank = BANK.replace("BANKED", str(args.banked)).replace("FIRST", str(args.first))
    manage(url, "shell", "-c", bank)
    env = {"DATABASE_URL": url}
    work = Path(tempfile.mkdtemp(prefix="landreg-export-"))
    database = url.rsplit("/", 1)[1]
    runs = {}
    for label, until in (("100k", "2025-01-31"), ("1m", None)):
        filters = ["--banked-to", until] if until else []
        runs[f"ours_{label}"] = timed(
            f"ours_{label}",
            [
                PYTHON, str(ROOT / "manage.py"), "export_banked",
                str(work / f"ours_{label}.geojson"), "--user", "bench-analyst",
                *filters,
            ],
            env=env,
        )  # fmt: skip
        where = "status = 'banked'" + (f" AND banked_on <= '{until}'" if until else "")
        runs[f"ogr2ogr_{label}"] = timed(
            f"ogr2ogr_{label}",
            [
                "ogr2ogr", "-f", "GeoJSON", str(work / f"ogr_{label}.geojson"),
                f"PG:dbname={database} host=127.0.0.1 user=landreg password=landreg",
                "-sql",
                "SELECT p.code, pr.code AS project, pr.name_zh AS project_name, "
                "p.land_class, p.street, p.status, p.area_m2, p.banked_on, "
                "p.bank_ref, ST_Transform(p.geom, 4326) AS geom "
                "FROM registry_parcel p LEFT JOIN registry_project pr "
                f"ON pr.id = p.project_id WHERE {where}",
                "-lco", "COORDINATE_PRECISION=7", "-lco", "RFC7946=YES",
            ],
        )  # fmt: skip
        for name in (f"ours_{label}", f"ogr2ogr_{label}"):
            run = runs[name]
            print(f"{name}: {run.seconds:.1f} s, {run.peak_rss_mb:.0f} MB", flush=True)
    timing = manage(url, "shell", "--no-imports", "-c", TIMING).stdout
    p50, p95 = (float(x) for x in timing.strip().splitlines()[-1].split())
    print("| run | seconds | peak RSS (MB) | vs ogr2ogr |")
    print("|---|---|---|---|")
    for label in ("100k", "1m"):
        ours, ogr = runs[f"ours_{label}"], runs[f"ogr2ogr_{label}"]
        for run in (ours, ogr):
            print(
                f"| {run.name} | {run.seconds:.1f} | {run.peak_rss_mb:.0f} "
                f"| {run.seconds / ogr.seconds:.2f}× |"
            )
    print(f"statistics over all parcels: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    save("export", {"runs": runs, "statistics_ms": {"p50": p50, "p95": p95}})


if __name__ == "__main__":
    main()
