"""Background jobs of the importer, on procrastinate's PostgreSQL queue.

The same PostgreSQL that holds the registry holds the queue, so a job is enqueued
in the same transaction as its batch and no broker has to be run or trusted.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from procrastinate.contrib.django import app

from importers import pipeline, uploads
from importers.models import ImportBatch
from registry.errors import RegistryError


@app.task(name="importers.run_batch", queue="imports", pass_context=False)
def run_batch(batch_id: int, commit: bool, actor_id: int | None = None) -> str:
    """Check (and, if ``commit``, commit as ``actor_id``) one import batch."""
    batch = ImportBatch.objects.select_related("project", "created_by").get(pk=batch_id)
    if batch.state not in (ImportBatch.State.QUEUED, ImportBatch.State.CHECKED):
        # A retried job finds its batch already finished: do it only once.
        return batch.state
    actor = get_user_model().objects.get(pk=actor_id) if actor_id else None
    return pipeline.run(batch, commit=commit, actor=actor).state


def enqueue(batch: ImportBatch, *, commit: bool, actor=None) -> None:
    """Put the batch on the queue for a worker (``manage.py procrastinate worker``).

    ``actor`` is who asked for the commit (default: who uploaded).
    """
    batch.state = ImportBatch.State.QUEUED
    batch.progress, batch.stage = 0, ""
    batch.save(update_fields=["state", "progress", "stage"])
    run_batch.configure(lock=f"import-project-{batch.project_id}").defer(
        batch_id=batch.pk, commit=commit, actor_id=actor.pk if actor else None
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
