"""Two surveyors committing overlapping surveys into one project at once.

Each import runs on its own connection (a thread each); the project's advisory
lock (``pipeline.IMPORT_LOCK``) is held from a third connection until both are
waiting on it, so that they really run at the same time. Then they commit one
after the other: the second sees what the first wrote, so its report is right
(its new codes created, the shared ones unchanged or re-surveyed) and nothing
is lost — the geometry it replaced is kept as a revision.
"""

import threading
import time

import psycopg
import pytest
from django.db import connection, connections
from shapely.geometry import box

from importers import pipeline
from importers.models import ImportBatch
from registry.choices import Role
from registry.models import Parcel, ParcelRevision, ParcelStatusChange
from tests.factories import user_with_role
from tests.importers import corpus
from tests.importers.faults import database_url
from tests.importers.helpers import DATABASES, run_import

pytestmark = pytest.mark.django_db(transaction=True, databases=DATABASES)

GROWN = box(492600.0, 2517600.0, 492645.0, 2517675.0)


def waiting_for_the_import_lock(project_id: int, count: int, timeout=30) -> None:
    """Wait until ``count`` sessions wait on the project's import lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND objid = %s AND NOT granted",
                [pipeline.IMPORT_LOCK, project_id],
            )
            if cursor.fetchone()[0] == count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{count} imports never waited on the lock together")


def test_two_overlapping_imports_at_once_are_serialised_and_both_reports_right(
    project, surveyor, corpus_dir
):
    second_surveyor = user_with_role(Role.SURVEYOR, project, username="surveyor-2")
    # A: GM-T-0001…0004. B: GM-T-0003…0006, GM-T-0003 re-surveyed larger.
    parcels_b = [dict(p) for p in corpus.PARCELS[2:]]
    parcels_b[0]["geometry"] = GROWN
    parcels_b[0]["declared_area"] = GROWN.area
    files = {
        "a": corpus.shapefile_zip(corpus_dir, name="a", parcels=corpus.PARCELS[:4]),
        "b": corpus.shapefile_zip(corpus_dir, name="b", parcels=parcels_b),
    }
    actors = {"a": surveyor, "b": second_surveyor}
    batches: dict = {}
    holder = psycopg.connect(database_url(), autocommit=True)
    holder.execute(
        "SELECT pg_advisory_lock(%s, %s)", [pipeline.IMPORT_LOCK, project.pk]
    )

    def importing(key: str) -> threading.Thread:
        def run() -> None:
            try:
                batches[key] = run_import(
                    files[key], project=project, actor=actors[key], commit=True
                )
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    threads = [importing("a"), importing("b")]
    try:
        waiting_for_the_import_lock(project.pk, 2)
    finally:
        holder.close()
    for thread in threads:
        thread.join(timeout=60)

    first, second = sorted(
        (ImportBatch.objects.get(pk=b.pk) for b in batches.values()),
        key=lambda b: b.committed_at,
    )
    assert (first.state, second.state) == ("committed", "committed")
    assert (first.created, first.updated, first.unchanged) == (4, 0, 0)
    # The second finds the two shared codes registered: one the same, one not.
    assert (second.created, second.updated, second.unchanged) == (2, 1, 1)
    assert Parcel.objects.filter(project=project).count() == 6
    assert ParcelStatusChange.objects.filter(move="create").count() == 6
    # GM-T-0003 is as the later import has it; the earlier one's is a revision.
    revision = ParcelRevision.objects.get(parcel__code="GM-T-0003", kind="updated")
    assert revision.import_batch_id == second.pk
    later = GROWN if second.pk == batches["b"].pk else corpus.PARCELS[2]["geometry"]
    earlier = corpus.PARCELS[2]["geometry"] if later is GROWN else GROWN
    stored = Parcel.objects.get(code="GM-T-0003").geom
    assert abs(stored.area - later.area) < 0.01
    assert abs(revision.old_geom.area - earlier.area) < 0.01
