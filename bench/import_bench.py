"""Benchmark of the survey import against ogr2ogr and Django's LayerMapping.

Run by ``make bench``. In one run, on a fresh scratch database:

1. a 100,000-polygon GBK shapefile (no .cpg), zipped, is generated;
2. our import (``import_survey --commit``: unzip, own DBF reading and encoding
   check, CRS, every per-feature check, overlap checks in PostGIS, the commit
   with history and revisions) is timed as a separate process;
3. ``ogr2ogr -f PostgreSQL --config PG_USE_COPY YES`` loads the same zip into a
   plain table, no checks (the floor for "getting polygons into PostGIS");
4. Django's ``LayerMapping`` loads the first 10,000 rows (it is row by row);
5. our import of the same 100,000 again, on a fresh database, in one process
   that times its phases (``SPLIT``): reading, the per-row checks, the staging
   COPY, the checks between rows in SQL, the writes, the COMMIT (deferred
   foreign-key checks) and the tile renewal after it;
6. our import of 1,000,000 polygons, for peak memory.

Wall time and peak RSS of each process are written to var/bench/import.json and
printed as a table, the phases after it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, fresh_database, manage, save, timed
from tests.importers.corpus import generate_gbk_shapefile

SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import MultiPolygon, Polygon
from registry.models import Project
user, _ = get_user_model().objects.get_or_create(
    username="bench", defaults={"is_superuser": True}
)
Project.objects.get_or_create(code="BENCH", defaults=dict(
    name_zh="基准测试", name_en="Benchmark", kind="other", street="guangming",
    boundary=MultiPolygon(
        Polygon.from_bbox((487800, 2512900, 497900, 2523000)), srid=4547
    ),
    planned_area_m2=64e6))
"""

LAYERMAPPING = """
import os
from django.contrib.gis.db import models
from django.contrib.gis.utils import LayerMapping
from django.db import connection

class BenchParcel(models.Model):
    code = models.CharField(max_length=40)
    land_class = models.CharField(max_length=40)
    declared = models.FloatField(null=True)
    geom = models.MultiPolygonField(srid=4547)
    class Meta:
        app_label = "fixtures"
        db_table = "bench_layermapping"

with connection.schema_editor() as editor:
    editor.execute("DROP TABLE IF EXISTS bench_layermapping")
    editor.create_model(BenchParcel)
mapping = {
    "code": "DKBM", "land_class": "QSXZ", "declared": "MJ", "geom": "MULTIPOLYGON"
}
lm = LayerMapping(
    BenchParcel, os.environ["BENCH_SHP"], mapping, encoding="gb18030",
    transaction_mode="commit_on_success",
)
lm.save(silent=True, strict=True)
print(BenchParcel.objects.count(), "rows")
"""

# One import in this process, its phases timed: the progress stages the pipeline
# reports, the reading (the chunks' generator) and staging COPY inside the
# per-row phase, each SQL statement, the COMMIT and the tile renewal after it.
SPLIT = """
import json, os, time, collections
from pathlib import Path
import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from importers import pipeline, reading, staging
from registry.models import Project
from tilesvc import cache

spent = collections.Counter()
def timing(name, function):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started
    return timed

chunks = reading.Layer.chunks
def timed_chunks(self):
    rows = chunks(self)
    while True:
        started = time.perf_counter()
        try:
            chunk = next(rows)
        except StopIteration:
            spent["read"] += time.perf_counter() - started
            return
        spent["read"] += time.perf_counter() - started
        yield chunk
reading.Layer.chunks = timed_chunks
staging.append = timing("staging COPY", staging.append)
cache.invalidate = timing("tile renewal", cache.invalidate)
psycopg.Connection.commit = timing("COMMIT", psycopg.Connection.commit)
statements = collections.Counter()
def by_statement(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        statements[" ".join(sql.split())[:60]] += time.perf_counter() - started

stages, marks = collections.Counter(), []
def progress(percent, stage):
    now = time.perf_counter()
    if marks:
        stages[marks[-1][1] or "finishing: COMMIT, tile renewal"] += now - marks[-1][0]
    marks.append((now, stage))

path = Path(os.environ["BENCH_ZIP"])
batch = pipeline.new_batch(
    path=path, name=path.name, project=Project.objects.get(code="BENCH"),
    actor=get_user_model().objects.get(username="bench"),
    options=pipeline.Options())
started = time.perf_counter()
marks.append((started, "starting"))
with connection.execute_wrapper(by_statement):
    pipeline.run(batch, commit=True, progress=progress)
ended = time.perf_counter()
stages["finishing: COMMIT, tile renewal"] += ended - marks[-1][0]
print(json.dumps({
    "state": batch.state, "created": batch.created, "run_s": ended - started,
    "stages": stages, "spent": spent,
    "statements": dict(statements.most_common(8)),
}))
"""


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--layermapping-rows", type=int, default=10_000)
    parser.add_argument("--million", type=int, default=1_000_000, help="0 skips it")
    parser.add_argument(
        "--no-split",
        dest="split",
        action="store_false",
        help="skip the second, phase-timed run of our import",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="landreg-bench-"))
    print(f"generating {args.rows:,} GBK polygons in {work} …", flush=True)
    big = generate_gbk_shapefile(work / "big", args.rows)
    small = generate_gbk_shapefile(work / "small", args.layermapping_rows, as_zip=False)

    url = fresh_database("landreg_bench")
    manage(url, "shell", "-c", SETUP)
    env = {"DATABASE_URL": url}
    ours = timed(
        "ours",
        [
            PYTHON,
            str(ROOT / "manage.py"),
            "import_survey",
            str(big),
            "--project",
            "BENCH",
            "--commit",
            "--user",
            "bench",
            "-v",
            "0",
        ],
        env=env,
    )
    ogr = timed(
        "ogr2ogr",
        [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            _pg(),
            f"/vsizip/{big}",
            "-nln",
            "bench_ogr",
            "-overwrite",
            "-nlt",
            "MULTIPOLYGON",
            "-lco",
            "GEOMETRY_NAME=geom",
            "-oo",
            "ENCODING=GBK",
            "--config",
            "PG_USE_COPY",
            "YES",
        ],
    )
    layermapping = timed(
        "layermapping",
        [PYTHON, str(ROOT / "manage.py"), "shell", "-c", LAYERMAPPING],
        env={**env, "BENCH_SHP": str(small)},
    )
    runs = {"ours": ours, "ogr2ogr": ogr, "layermapping_10k": layermapping}
    for name, run in runs.items():
        print(f"{name}: {run.seconds:.1f} s, {run.peak_rss_mb:.0f} MB", flush=True)
    split = _split(big) if args.split else None
    if args.million:
        print(f"generating {args.million:,} polygons …", flush=True)
        million = generate_gbk_shapefile(work / "million", args.million, seed=1)
        url = fresh_database("landreg_bench")
        manage(url, "shell", "-c", SETUP)
        runs["ours_1m"] = timed(
            "ours_1m",
            [
                PYTHON,
                str(ROOT / "manage.py"),
                "import_survey",
                str(million),
                "--project",
                "BENCH",
                "--commit",
                "--user",
                "bench",
                "-v",
                "0",
            ],
            env={"DATABASE_URL": url},
        )
    rows = args.rows
    print()
    print("| run | rows | seconds | rows/s | peak RSS (MB) | time per row vs ogr2ogr |")
    print("|---|---|---|---|---|---|")
    for name, run in runs.items():
        sizes = {"layermapping_10k": args.layermapping_rows, "ours_1m": args.million}
        n = sizes.get(name, rows)
        ratio = (run.seconds / n) / (ogr.seconds / rows)
        print(
            f"| {name} | {n:,} | {run.seconds:.1f} | {n / run.seconds:,.0f} "
            f"| {run.peak_rss_mb:.0f} | {ratio:.2f}× |"
        )
    if split:
        _print_split(split, ours.seconds)
    save("import", {"rows": rows, "runs": runs, "split": split})


def _split(path: Path) -> dict:
    """Import ``path`` into a fresh database in one process timing its phases."""
    url = fresh_database("landreg_bench")
    manage(url, "shell", "-c", SETUP)
    started = time.perf_counter()
    result = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "shell", "-c", SPLIT],
        env={**os.environ, "DATABASE_URL": url, "BENCH_ZIP": str(path)},
        check=True,
        capture_output=True,
        text=True,
    )
    split = json.loads(result.stdout.strip().splitlines()[-1])
    split["process_s"] = time.perf_counter() - started
    return split


def _print_split(split: dict, first_s: float) -> None:
    print()
    print(
        f"where the time goes: a second import of the file, {split['process_s']:.1f} s"
        f" in all (the first took {first_s:.1f} s):"
    )
    startup = split["process_s"] - split["run_s"]
    print(f"- start-up (Python, Django, GDAL) and exit: {startup:.2f} s")
    for stage, seconds in split["stages"].items():
        print(f"- stage {stage}: {seconds:.2f} s")
    for name, seconds in split["spent"].items():
        print(f"  - of which {name}: {seconds:.2f} s")
    for statement, seconds in split["statements"].items():
        print(f"  - SQL {seconds:6.2f} s  {statement}")


def _import_command(path: Path) -> list[str]:
    return [
        PYTHON, str(ROOT / "manage.py"), "import_survey", str(path),
        "--project", "BENCH", "--commit", "--user", "bench", "-v", "0",
    ]  # fmt: skip


def _pg() -> str:
    env = os.environ.get
    return (
        f"PG:dbname=landreg_bench host={env('PGHOST', '127.0.0.1')} "
        f"port={env('PGPORT', '5432')} user={env('PGUSER', 'landreg')} "
        f"password={env('PGPASSWORD', 'landreg')}"
    )


if __name__ == "__main__":
    main()
