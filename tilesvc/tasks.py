"""Background jobs of the tile service: converting orthophotos, and the sweep.

On procrastinate's queue in the registry's own PostgreSQL, like the importer's
(``importers/tasks.py``): the row and its job are written in one transaction, so
a queued orthophoto always has a job and a job always finds its row. The worker
``make demo`` starts (``manage.py procrastinate worker``) serves every queue.
"""

import contextlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from registry.errors import RegistryError
from tilesvc import imagery
from tilesvc.models import Orthophoto

CONVERT = "tilesvc.convert_orthophoto"
#: A running job's worker that has not said it is alive for this long is gone
#: (procrastinate's workers say so every few seconds).
STALLED_AFTER_S = 300


@app.task(name=CONVERT, queue="imagery", pass_context=False)
def convert_orthophoto(orthophoto_id: int) -> str:
    """Convert one accepted orthophoto to its COG; return the state it ends in."""
    # What an earlier worker left behind goes first (and so after a restart).
    imagery.sweep(interrupted=interrupted())
    orthophoto = (
        Orthophoto.objects.select_related("project").filter(pk=orthophoto_id).first()
    )
    if orthophoto is None:
        return "deleted"  # deleted before its turn came
    # A refusal of the file is the job done: the row says why, in both languages.
    with contextlib.suppress(RegistryError):
        imagery.orthophoto_convert(orthophoto)
    return orthophoto.state


@app.periodic(cron="*/10 * * * *")
@app.task(name="tilesvc.sweep_imagery", queue="imagery", pass_context=False)
def sweep_imagery(timestamp: int) -> dict[str, int]:
    """Remove orphaned scratch files and fail interrupted conversions."""
    return imagery.sweep(interrupted=interrupted())


def interrupted() -> list[int]:
    """Return the orthophotos waiting for a conversion that will never finish.

    Those whose job is no longer to do or doing (it failed outside the
    conversion, or was cancelled), and those whose job's worker has stopped
    saying it is alive (killed mid-conversion).
    """
    waiting = set(
        Orthophoto.objects.filter(
            state__in=[Orthophoto.State.QUEUED, Orthophoto.State.CONVERTING]
        ).values_list("pk", flat=True)
    )
    if not waiting:
        return []
    stale = timezone.now() - timedelta(seconds=STALLED_AFTER_S)
    alive = set()
    jobs = ProcrastinateJob.objects.filter(
        task_name=CONVERT, status__in=["todo", "doing"]
    ).select_related("worker")
    for job in jobs:
        if job.status == "doing" and (
            job.worker is None or job.worker.last_heartbeat < stale
        ):
            continue
        alive.add(job.args.get("orthophoto_id"))
    return sorted(waiting - alive)


def submit(upload, *, project, title: str, actor, captured_on=None) -> Orthophoto:
    """Check an uploaded orthophoto and queue its conversion: the page's and the API's.

    Raise what ``imagery.orthophoto_accept`` raises; nothing is kept then.
    """
    with imagery.upload_on_disk(upload) as path, transaction.atomic():
        orthophoto = imagery.orthophoto_accept(
            project=project,
            upload_path=path,
            title=title,
            actor=actor,
            name=upload.name,
            captured_on=captured_on,
            move=True,
        )
        try:
            convert_orthophoto.defer(orthophoto_id=orthophoto.pk)
        except BaseException:
            (imagery.imagery_dir() / orthophoto.upload).unlink(missing_ok=True)
            raise
    return orthophoto
