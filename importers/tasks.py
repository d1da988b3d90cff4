"""Background jobs of the importer, on procrastinate's PostgreSQL queue.

The same PostgreSQL that holds the registry holds the queue, so a job is enqueued
in the same transaction as its batch and no broker has to be run or trusted.
"""

from django.contrib.auth import get_user_model
from django.db import (
    DatabaseError,
    connection,
    transaction,
)
from procrastinate.contrib.django import app

from importers import pipeline, uploads
from importers.models import ImportBatch
from registry.audit_origin import Origin, current_origin, using
from registry.errors import RegistryError

# Advisory lock class of import jobs; the second key is the batch. Held for the
# session of the worker running the batch, so it dies with that worker.
JOB_LOCK = 440312
RUNNABLE = (ImportBatch.State.QUEUED, ImportBatch.State.CHECKED)
# States a run leaves behind only when its worker died mid-way: the run's
# transaction was rolled back with the worker's connection, so nothing of it is
# in the registry and it may be run again.
INTERRUPTED = (ImportBatch.State.CHECKING, ImportBatch.State.COMMITTING)
# A batch whose worker died this many times is failed, not run again: a file that
# gets its worker killed (out of memory, say) would otherwise loop forever.
MAX_INTERRUPTED_ATTEMPTS = 2
# Seconds without a heartbeat after which a worker counts as dead (procrastinate's
# own default ``stalled_worker_timeout``; workers beat every 10 s).
STALLED_AFTER_S = 30


@app.task(name="importers.run_batch", queue="imports", pass_context=True)
def run_batch(
    context,
    batch_id: int,
    commit: bool,
    actor_id: int | None = None,
    origin: dict | None = None,
) -> str:
    """Check (and, if ``commit``, commit as ``actor_id``) one import batch.

    A batch runs at most once at a time (a session advisory lock on the batch,
    which ends with its worker's connection) and commits at most once (its state
    is written in the commit's own transaction). A job retried after its worker
    died runs the batch it interrupted again, once; then the batch fails.
    """
    with connection.cursor() as cursor:
        # Another copy of this job (a stalled job retried while its worker still
        # lived, or whose dead worker's session the server has not yet ended)
        # is waited for; the batch's state then says what is left to do.
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [JOB_LOCK, batch_id])
    try:
        # Audit records name the request that queued the job (origin), if any.
        with using(Origin.from_job(origin)):
            return _run_locked(batch_id, commit, actor_id, context.job.attempts)
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [JOB_LOCK, batch_id]
                )
        except DatabaseError:
            pass  # the connection is gone, and the lock with it


def _run_locked(batch_id: int, commit: bool, actor_id: int | None, attempts: int):
    batch = ImportBatch.objects.select_related("project", "created_by").get(pk=batch_id)
    if batch.state in INTERRUPTED and attempts >= MAX_INTERRUPTED_ATTEMPTS:
        batch.state = ImportBatch.State.FAILED
        batch.error = (
            f"导入中断：处理该批次的后台进程已 {attempts} 次意外终止（可能内存不足），"
            "未写入任何数据；请联系管理员后重新上传。 / Import interrupted: the "
            f"worker running this batch stopped unexpectedly {attempts} times "
            "(out of memory?); nothing was written. Ask the administrator, then "
            "upload the file again."
        )
        batch.progress, batch.stage = 100, ""
        batch.save(update_fields=["state", "error", "progress", "stage"])
        return batch.state
    if batch.state not in (*RUNNABLE, *INTERRUPTED):
        # A retried job finds its batch already finished: do it only once.
        return batch.state
    actor = get_user_model().objects.get(pk=actor_id) if actor_id else None
    # A lost database connection is recorded on the batch by the pipeline
    # itself, once the server is back (``pipeline.record_lost_connection``).
    return pipeline.run(batch, commit=commit, actor=actor).state


@app.periodic(cron="* * * * *", periodic_id="retry-stalled-imports")
@app.task(
    name="importers.retry_stalled_jobs",
    queue="upkeep",
    queueing_lock="retry-stalled-imports",
    pass_context=False,
)
async def retry_stalled_jobs(timestamp: int) -> list[int]:
    """Put back on the queue the import jobs of workers that died (every minute).

    A worker killed mid-import leaves its job ``doing``; its project's lock would
    then hold every later import of that project back. Procrastinate knows the
    dead by their missing heartbeats.
    """
    stalled = await app.job_manager.get_stalled_jobs(
        queue="imports", seconds_since_heartbeat=STALLED_AFTER_S
    )
    for job in stalled:
        await app.job_manager.retry_job(job)
    return [job.id for job in stalled]


def enqueue(batch: ImportBatch, *, commit: bool, actor=None) -> None:
    """Put the batch on the queue for a worker (``manage.py procrastinate worker``).

    ``actor`` is who asked for the commit (default: who uploaded).
    """
    batch.state = ImportBatch.State.QUEUED
    batch.progress, batch.stage = 0, ""
    batch.save(update_fields=["state", "progress", "stage"])
    run_batch.configure(lock=f"import-project-{batch.project_id}").defer(
        batch_id=batch.pk,
        commit=commit,
        actor_id=actor.pk if actor else None,
        origin=current_origin().as_job(),
    )


def submit(upload, *, project, actor, options: pipeline.Options, commit: bool):
    """Keep an upload and queue its check (and commit): the page's and the API's.

    Nothing is left behind when it is refused: a stored file whose batch could
    not be made is discarded.
    """
    path = uploads.store(upload)
    try:
        with transaction.atomic():
            batch = pipeline.new_batch(
                path=path,
                name=upload.name,
                project=project,
                actor=actor,
                options=options,
            )
            enqueue(batch, commit=commit)
    except RegistryError:
        uploads.discard(path)
        raise
    return batch
