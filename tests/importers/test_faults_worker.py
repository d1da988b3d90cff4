"""The import worker killed mid-import: the job is retried, the batch lands once.

A real ``manage.py procrastinate worker`` runs a real import on the test database
and is sent SIGKILL while it writes the parcels; procrastinate's heartbeats tell
the dead worker apart, ``importers.retry_stalled_jobs`` puts its job back, and a
second worker finishes it: the parcels exist once, with one history row each.
"""

import asyncio
import os
import signal
import threading
import time
import types

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from procrastinate.contrib.django.models import ProcrastinateJob

from importers import pipeline, tasks
from importers.models import ImportBatch
from registry.choices import Role
from registry.models import Parcel, ParcelStatusChange
from tests.factories import user_with_role
from tests.importers.corpus import generate_gbk_shapefile
from tests.importers.faults import (
    database_url,
    finish,
    generator_project,
    manage,
    subprocess_env,
    wait_for_stage,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "progress"]),
    pytest.mark.usefixtures("queue", "no_workers_left"),
]

ROWS = 20_000


@pytest.fixture
def no_workers_left():
    """End the test with no worker registered (the queue's tables are not flushed)."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")


@pytest.fixture
def fault_project(db):
    return generator_project()


@pytest.fixture
def fault_surveyor(fault_project):
    return user_with_role(Role.SURVEYOR, fault_project, username="fault-surveyor")


def queued(path, project, actor, *, commit: bool) -> ImportBatch:
    """Record ``path`` as a batch and queue its job, as the page and the API do."""
    with transaction.atomic():
        batch = pipeline.new_batch(
            path=path,
            name=path.name,
            project=project,
            actor=actor,
            options=pipeline.Options(),
        )
        tasks.enqueue(batch, commit=commit)
    return batch


def retry_stalled() -> list[int]:
    """Run the periodic task once, as the worker's scheduler would."""

    async def run() -> list[int]:
        ids = await tasks.retry_stalled_jobs(timestamp=0)
        # The task's queries ran on a thread of their own; close its connection.
        await sync_to_async(connections.close_all)()
        return ids

    return asyncio.run(run())


def test_a_killed_worker_s_import_is_retried_and_lands_once(
    fault_project, fault_surveyor, tmp_path
):
    survey = generate_gbk_shapefile(tmp_path / "survey", ROWS, seed=7)
    batch = queued(survey, fault_project, fault_surveyor, commit=True)
    job = ProcrastinateJob.objects.get()
    env = subprocess_env(tmp_path)

    worker = manage("procrastinate", "worker", "-q", "imports", "-c", "1", env=env)
    wait_for_stage(batch.pk, {"committing"}, worker)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)

    interrupted = ImportBatch.objects.get(pk=batch.pk)
    job.refresh_from_db()
    assert (interrupted.state, job.status, job.attempts) == ("checking", "doing", 0)
    assert not Parcel.objects.filter(project=fault_project).exists()

    # Thirty seconds without a heartbeat make a worker dead; rather than wait for
    # them, the dead worker's last heartbeat is moved back.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - "
            "interval '1 minute' WHERE id = %s",
            [job.worker_id],
        )
    assert retry_stalled() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("todo", 1)

    second = manage(
        "procrastinate", "worker", "-q", "imports", "-c", "1", "--one-shot", env=env
    )
    output = finish(second)
    assert second.returncode == 0, output

    done = ImportBatch.objects.get(pk=batch.pk)
    job.refresh_from_db()
    assert (done.state, done.created, done.updated, done.unchanged) == (
        "committed",
        ROWS,
        0,
        0,
    )
    assert job.status == "succeeded"
    parcels = Parcel.objects.filter(project=fault_project)
    assert parcels.count() == ROWS
    assert parcels.values("code").distinct().count() == ROWS
    assert ParcelStatusChange.objects.filter(parcel__project=fault_project).count() == (
        ROWS
    )


def test_a_batch_whose_worker_died_twice_fails_with_the_reason(
    fault_project, fault_surveyor, tmp_path
):
    survey = generate_gbk_shapefile(tmp_path / "survey", 10)
    batch = queued(survey, fault_project, fault_surveyor, commit=True)
    ImportBatch.objects.filter(pk=batch.pk).update(state="checking", progress=55)
    second_retry = types.SimpleNamespace(job=types.SimpleNamespace(attempts=2))

    state = tasks.run_batch(second_retry, batch_id=batch.pk, commit=True)

    failed = ImportBatch.objects.get(pk=batch.pk)
    assert (state, failed.state, failed.progress) == ("failed", "failed", 100)
    assert failed.error == (
        "导入中断：处理该批次的后台进程已 2 次意外终止（可能内存不足），"
        "未写入任何数据；请联系管理员后重新上传。 / Import interrupted: the "
        "worker running this batch stopped unexpectedly 2 times (out of memory?); "
        "nothing was written. Ask the administrator, then upload the file again."
    )
    assert not Parcel.objects.filter(project=fault_project).exists()


def test_a_second_copy_of_a_job_waits_and_does_not_import_again(
    fault_project, fault_surveyor, tmp_path
):
    survey = generate_gbk_shapefile(tmp_path / "survey", 10)
    batch = queued(survey, fault_project, fault_surveyor, commit=True)
    first_run = types.SimpleNamespace(job=types.SimpleNamespace(attempts=0))
    # Another worker's session holds the batch: the second copy must wait for it.
    other = psycopg.connect(database_url(), autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s, %s)", [tasks.JOB_LOCK, batch.pk])
    outcome = {}

    def second_copy():
        try:
            outcome["state"] = tasks.run_batch(
                first_run, batch_id=batch.pk, commit=True
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=second_copy)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()
    assert ImportBatch.objects.get(pk=batch.pk).state == "queued"
    # The first copy commits, then its session ends.
    ImportBatch.objects.filter(pk=batch.pk).update(state="committed", created=10)
    other.close()
    thread.join(timeout=30)

    assert outcome == {"state": "committed"}
    assert not Parcel.objects.filter(project=fault_project).exists()
