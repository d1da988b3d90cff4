"""Shared plumbing of the fault tests: real workers and commands in subprocesses.

A fault test kills or starves a real process, so the import runs outside the
test's process, against the test database (``transaction=True`` tests: what the
subprocess commits is visible here, and nothing is rolled back at the end).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import connection

from importers.models import ImportBatch
from tests.factories import ProjectFactory

ROOT = Path(__file__).resolve().parents[2]
# The generator's 8 km square around Guangming's centre, and a little more.
GENERATOR_BOX = (487800, 2512900, 497900, 2523000)


def generator_project(code: str = "FAULT"):
    """Return a project whose boundary holds every generated parcel."""
    return ProjectFactory(
        code=code,
        boundary=MultiPolygon(Polygon.from_bbox(GENERATOR_BOX), srid=4547),
        planned_area_m2=101e6,
    )


def database_url(name: str | None = None) -> str:
    """Return the URL of the test database (or of ``name`` on the same server)."""
    s = connection.settings_dict
    return (
        f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/"
        f"{name or s['NAME']}"
    )


def subprocess_env(tmp_path: Path, url: str | None = None, **extra: str) -> dict:
    """Return the environment of a manage.py subprocess on the test database."""
    scratch = tmp_path / "subprocess-tmp"
    scratch.mkdir(exist_ok=True)
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": url or database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "IMPORT_UPLOAD_DIR": str(settings.IMPORT_UPLOAD_DIR),
        "TILE_CACHE_DIR": str(tmp_path / "subprocess-tiles"),
        "TMPDIR": str(scratch),
        **extra,
    }


def manage(*args: str, env: dict, **popen) -> subprocess.Popen:
    """Start ``manage.py args`` (its own session, output captured)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **popen,
    )


def wait_for_stage(batch_id: int, stages: set[str], process, timeout: float = 180):
    """Poll the batch until its stage is one of ``stages``; return the batch.

    Fails with the process's output if it ends first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = ImportBatch.objects.get(pk=batch_id)
        if batch.stage in stages:
            return batch
        if process.poll() is not None:
            raise AssertionError(
                f"process ended ({process.returncode}) before stage {stages}, "
                f"batch {batch.state}/{batch.stage}:\n{process.stdout.read()[-3000:]}"
            )
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never reached stage {stages}")


def finish(process, timeout: float = 240) -> str:
    """Wait for ``process`` to end; return its output (kill it if it hangs)."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, _ = process.communicate()
        raise AssertionError(f"process hung:\n{out[-3000:]}") from None
    return out


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateCluster:
    """A throw-away PostgreSQL 15 cluster of this test's own, on a free port.

    The shared server on port 5432 is never touched: this one may be stopped
    and restarted at will. Run as ``postgres`` when the tests run as root
    (``initdb`` refuses root). Its superuser is ``landreg`` (trust, loopback).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()

    def _run(self, *command: str, timeout: float = 120) -> str:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*prefix, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{command[0]} failed: {result.stdout}{result.stderr}\n{log[-2000:]}"
            )
        return result.stdout

    def start(self) -> None:
        """Create the cluster and start it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "landreg",
            "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", action, *extra,
        )  # fmt: skip

    def restart(self) -> None:
        """Restart the server: fast shutdown (every session ended), then start."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop the server (immediately) and remove the cluster."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        """Return the URL of ``database`` on this cluster."""
        return f"postgres://landreg:landreg@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` with PostGIS; return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return self.url(name)


def free_port() -> int:
    """Return a loopback port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
