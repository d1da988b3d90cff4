"""PostgreSQL restarted in the middle of an import.

The shared server is never restarted: each test starts a private PostgreSQL 15
cluster (``initdb`` into /tmp, a free port), migrates a database there, runs the
real import against it — through the job worker, and through
``import_survey --commit`` — and restarts that cluster (``pg_ctl restart -m
fast``, which ends every session) while the import writes its parcels. The batch
must end ``failed`` with the reason in both languages, nothing of it in the
registry, and the import run again must succeed.
"""

import os
import signal
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.importers.corpus import generate_gbk_shapefile
from tests.importers.faults import (
    PG_BIN,
    PrivateCluster,
    finish,
    manage,
    subprocess_env,
)

ROWS = 20_000
TEMPLATE = "landreg_fault_template"
SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import MultiPolygon, Polygon
from registry.models import Project
get_user_model().objects.create_superuser("fault", password="unused-fault-pass")
Project.objects.create(code="FAULT", name_zh="故障演练", name_en="Fault drill",
    kind="other", street="guangming", planned_area_m2=101e6,
    boundary=MultiPolygon(Polygon.from_bbox(
        (487800, 2512900, 497900, 2523000)), srid=4547))
"""

ENQUEUE = """
import os
from pathlib import Path
from django.contrib.auth import get_user_model
from django.db import transaction
from importers import pipeline, tasks
from registry.models import Project
path = Path(os.environ["FAULT_SURVEY"])
with transaction.atomic():
    batch = pipeline.new_batch(path=path, name=path.name,
        project=Project.objects.get(code="FAULT"),
        actor=get_user_model().objects.get(username="fault"),
        options=pipeline.Options())
    tasks.enqueue(batch, commit=True)
print(batch.pk)
"""

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists(), reason="PostgreSQL 15 server binaries absent"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A private cluster with a migrated template database (project FAULT)."""
    # A short path: the server's Unix socket lives there too (108 bytes at most).
    directory = Path(tempfile.mkdtemp(prefix="landreg-pg-", dir="/tmp"))
    private = PrivateCluster(directory)
    try:
        private.start()
        url = private.create_database(TEMPLATE)
        env = subprocess_env(tmp_path_factory.mktemp("template"), url)
        run("migrate", "--no-input", "-v", "0", env=env)
        run("shell", "-c", SETUP, env=env)
        yield private
    finally:
        private.stop()


@pytest.fixture
def database(cluster, request):
    """Return the URL of a fresh copy of the template, for this test alone."""
    name = f"landreg_fault_{request.node.name[5:30]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return cluster.url(name)


def run(*args: str, env: dict) -> str:
    process = manage(*args, env=env)
    output = finish(process)
    assert process.returncode == 0, output
    return output


def one(url: str, sql: str, *params):
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(sql, params).fetchone()


def wait_for_stage(url: str, stage: str, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = one(url, "SELECT state, stage FROM importers_importbatch")
        if row and row[1] == stage:
            return
        if row and row[0] in ("committed", "failed", "refused"):
            raise AssertionError(f"the import ended ({row[0]}) before {stage}")
        if process.poll() is not None:
            raise AssertionError(
                f"import ended before {stage}: {process.stdout.read()}"
            )
        time.sleep(0.05)
    raise AssertionError(f"the import never reached {stage}")


def test_a_restart_mid_command_fails_the_batch_and_the_retry_succeeds(
    cluster, database, tmp_path
):
    url = database
    env = subprocess_env(tmp_path, url)
    survey = generate_gbk_shapefile(tmp_path / "survey", ROWS, seed=3)
    command = ["import_survey", str(survey), "--project", "FAULT", "--commit"]

    importing = manage(*command, "--user", "fault", "-v", "0", env=env)
    wait_for_stage(url, "committing", importing)
    cluster.restart()
    output = finish(importing)

    assert importing.returncode != 0, output
    state, error, committed_at = one(
        url, "SELECT state, error, committed_at FROM importers_importbatch"
    )
    assert state == "failed", output
    assert committed_at is None
    assert error.startswith("导入失败"), error
    assert "import failed" in error.lower(), error
    assert one(url, "SELECT count(*) FROM registry_parcel") == (0,)
    assert one(url, "SELECT count(*) FROM registry_parcelstatuschange") == (0,)
    assert one(url, "SELECT count(*) FROM registry_parcelrevision") == (0,)

    retried = run(*command, "--user", "fault", env=env)

    assert "created 20000, updated 0, unchanged 0" in retried, retried
    assert one(
        url, "SELECT state, created FROM importers_importbatch ORDER BY id DESC"
    ) == ("committed", ROWS)
    assert one(url, "SELECT count(*), count(DISTINCT code) FROM registry_parcel") == (
        ROWS,
        ROWS,
    )
    assert one(url, "SELECT count(*) FROM registry_parcelstatuschange") == (ROWS,)


def wait_for_state(url: str, batch_id: int, states: set[str], timeout: float = 90):
    """Poll the batch (through the restart) until its state is one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            row = one(
                url,
                "SELECT state, error FROM importers_importbatch WHERE id = %s",
                batch_id,
            )
        except psycopg.OperationalError:
            row = None  # the server is still restarting
        if row and row[0] in states:
            return row
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} never reached {states}: {row}")


def wait_for_job(url: str, status: str, timeout: float = 60) -> None:
    """Poll the first import job until procrastinate records ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = one(
            url,
            "SELECT status FROM procrastinate_jobs "
            "WHERE task_name = 'importers.run_batch' ORDER BY id LIMIT 1",
        )
        if found == (status,):
            return
        time.sleep(0.2)
    raise AssertionError(f"the job is {found}, not {status}")


def test_a_restart_mid_job_fails_the_batch_and_the_retried_job_commits(
    cluster, database, tmp_path
):
    url = database
    env = subprocess_env(tmp_path, url)
    survey = generate_gbk_shapefile(tmp_path / "survey", ROWS, seed=3)
    enqueue_env = {**env, "FAULT_SURVEY": str(survey)}
    worker = manage("procrastinate", "worker", "-q", "imports", "-c", "1", env=env)
    try:
        first = int(run("shell", "-c", ENQUEUE, env=enqueue_env).split()[-1])
        wait_for_stage(url, "committing", worker)
        cluster.restart()

        state, error = wait_for_state(url, first, {"failed", "committed"})
        assert state == "failed"
        assert error.startswith(
            "导入失败：与数据库的连接中断（数据库重启或网络故障），本批次未写入任何数据；"
            "请重新检查该文件。 / Import failed: the connection to the database was "
            "lost (database restarted or network failure); nothing of this batch "
            "was written. Check the file again. (OperationalError: "
        ), error
        assert one(url, "SELECT count(*) FROM registry_parcel") == (0,)
        assert one(url, "SELECT count(*) FROM registry_parcelstatuschange") == (0,)

        # The job is recorded failed, so the project's queue lock is free again.
        wait_for_job(url, "failed")
    finally:
        # Procrastinate's worker stops by itself when its listening connection
        # cannot reconnect during the restart (run it under a supervisor that
        # restarts it); stop it here if it did not.
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        finish(worker)

    again = int(run("shell", "-c", ENQUEUE, env=enqueue_env).split()[-1])
    retry_worker = manage(
        "procrastinate", "worker", "-q", "imports", "-c", "1", "--one-shot", env=env
    )
    output = finish(retry_worker)
    state, _ = wait_for_state(url, again, {"failed", "committed"}, timeout=10)
    assert state == "committed", output
    assert one(
        url, "SELECT created FROM importers_importbatch WHERE id = %s", again
    ) == (ROWS,)
    assert one(url, "SELECT count(*), count(DISTINCT code) FROM registry_parcel") == (
        ROWS,
        ROWS,
    )
    assert one(url, "SELECT count(*) FROM registry_parcelstatuschange") == (ROWS,)
    assert one(
        url,
        "SELECT array_agg(status::text ORDER BY id) FROM procrastinate_jobs "
        "WHERE task_name = 'importers.run_batch'",
    ) == (["failed", "succeeded"],)
