"""Running imports and reading their outcome, shared by the importer tests."""

import gc
import re
from pathlib import Path

from django.contrib.gis.geos import GEOSGeometry
from procrastinate.contrib.django import app

from importers import pipeline
from importers.models import ImportBatch
from registry.models import Building, Parcel, ParcelRevision, ParcelStatusChange

HAN = re.compile(r"[\u4e00-\u9fff]")

#: Imports write progress through a second alias; tests must allow it.
DATABASES = ["default", "progress"]

#: The counts of a clean six-parcel file.
SIX_VALID = {"features": 6, "valid": 6, "rejected": 0, "errors": 0, "warnings": 0}


def run_import(
    path: Path, *, project, actor, commit: bool = False, **options
) -> ImportBatch:
    """Check (and with ``commit``, commit) ``path`` through the import core."""
    batch = pipeline.new_batch(
        path=path,
        name=path.name,
        project=project,
        actor=actor,
        options=pipeline.Options(**options),
    )
    return pipeline.run(batch, commit=commit)


def registry_state() -> dict:
    """Return what an import could change: row counts, geometries and statuses."""
    parcels = Parcel.objects.order_by("code")
    return {
        "parcels": parcels.count(),
        "history": ParcelStatusChange.objects.count(),
        "revisions": ParcelRevision.objects.count(),
        "buildings": Building.objects.count(),
        "geometries": {p.code: p.geom.hexewkb for p in parcels},
        "statuses": dict(parcels.values_list("code", "status")),
        "land_classes": dict(parcels.values_list("code", "land_class")),
    }


def assert_chinese(zh: str, en: str) -> None:
    """Assert ``zh`` is a Chinese rendering of ``en``, not a copy of it."""
    assert zh, en
    assert zh != en
    assert HAN.search(zh), zh


def assert_refused(batch: ImportBatch, english: str) -> None:
    """Assert the whole file was refused with exactly this English message."""
    assert batch.state == ImportBatch.State.REFUSED, batch.report
    refusal = batch.report["refusal"]
    assert refusal["en"] == english
    assert_chinese(refusal["zh"], refusal["en"])
    assert batch.error == f"{refusal['zh']} / {refusal['en']}"
    assert batch.report["accepted"] is False


def reported(batch: ImportBatch) -> list[tuple]:
    """Return the report's problems as (row, code, field, severity, English).

    First assert that each problem also reads in Chinese.
    """
    problems = batch.report["problems"]
    for problem in problems:
        assert_chinese(problem["zh"], problem["en"])
    return [(p["row"], p["code"], p["field"], p["severity"], p["en"]) for p in problems]


def preview(batch: ImportBatch) -> dict[int, dict]:
    """Return the report's preview as {row number: {field name: value}}."""
    fields = batch.report["fields"]
    return {
        values[0]: dict(zip(fields, values[1:], strict=True))
        for values in batch.report["preview"]
    }


def stored_geometry(code: str) -> GEOSGeometry:
    """Return the stored geometry of the parcel ``code``."""
    return Parcel.objects.get(code=code).geom


def run_worker() -> None:
    """Run the real procrastinate queue in this process until it is empty.

    The worker gets its own psycopg connector, as ``manage.py procrastinate
    worker`` does: the Django connector returns job arguments as JSON text. Jobs
    run in threads of their own, with Django connections of their own, so only
    committed rows are visible to them (tests need ``transactional_db``). Those
    threads are gone when the worker returns; collecting their connection
    objects closes the connections, so the test database can be dropped.
    """
    with app.replace_connector(app.connector.get_worker_connector()):
        app.run_worker(wait=False, install_signal_handlers=False, listen_notify=False)
    gc.collect()
