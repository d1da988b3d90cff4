"""Shared plumbing of the benchmarks: a scratch database, timed subprocesses."""

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "bench"
PYTHON = sys.executable


@dataclass
class Run:
    """One timed command: wall seconds and peak resident memory."""

    name: str
    seconds: float
    peak_rss_mb: float
    detail: str = ""


def database_url(name: str) -> str:
    """Return the URL of a scratch database next to the application's."""
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = os.environ.get("PGPORT", "5432")
    user = os.environ.get("PGUSER", "landreg")
    password = os.environ.get("PGPASSWORD", "landreg")
    return f"postgres://{user}:{password}@{host}:{port}/{name}"


def fresh_database(name: str) -> str:
    """Drop and recreate database ``name`` (owned by the app role); migrate it."""
    url = database_url(name)
    env = {**os.environ, "PGPASSWORD": os.environ.get("PGPASSWORD", "landreg")}
    common = [
        "-h",
        os.environ.get("PGHOST", "127.0.0.1"),
        "-U",
        os.environ.get("PGUSER", "landreg"),
    ]
    subprocess.run(["dropdb", "--if-exists", *common, name], check=True, env=env)
    subprocess.run(["createdb", *common, name], check=True, env=env)
    manage(url, "migrate", "--no-input", "-v", "0")
    return url


def manage(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``manage.py`` against the database at ``url``."""
    return subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env={**os.environ, "DATABASE_URL": url},
        check=check,
        capture_output=True,
        text=True,
    )


def timed(name: str, command: list[str], *, env: dict | None = None) -> Run:
    """Run ``command`` under GNU time; return its wall time and peak RSS."""
    stats = RESULTS / f".{name}.time"
    stats.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(stats), *command],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    peak_kb = int(stats.read_text().strip().splitlines()[-1])
    return Run(
        name,
        seconds,
        peak_kb / 1024,
        result.stdout.strip().splitlines()[-1:][0] if result.stdout.strip() else "",
    )


def save(name: str, payload: dict) -> Path:
    """Write results as JSON under var/bench/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=_plain))
    return path


def _plain(value):
    if isinstance(value, Run):
        return asdict(value)
    raise TypeError(type(value))


def percentile(values, q: float) -> float:
    """Return the nearest-rank percentile ``q`` (0–100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
