"""Shared plumbing of the fault tests: real workers and commands in subprocesses.

A fault test kills or starves a real process, so the import runs outside the
test's process, against the test database (``transaction=True`` tests: what the
subprocess commits is visible here, and nothing is rolled back at the end).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

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
