"""Audit records of imports: one per commit and one per undo, naming who and from where.

A commit queued from a page or the API is written by the job worker, but its
record carries the address and user agent of the request that asked for it.
"""

import socket
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from shapely.geometry import box

from importers.models import ImportBatch
from registry.models import AuditRecord, ParcelRevision
from tests.importers import corpus
from tests.importers.helpers import DATABASES, run_import, run_worker

HOST = socket.gethostname()
OFFICE = "10.20.30.41"
SURVEY_TOOL = "survey-uploader/2.1"


@pytest.fixture
def trail():
    """Return a function listing the records written since the test was set up."""
    start = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first()

    def written(**filters) -> list[AuditRecord]:
        return list(
            AuditRecord.objects.filter(pk__gt=start or 0, **filters).order_by("pk")
        )

    return written


def import_command(path: Path, *args) -> None:
    call_command(
        "import_survey",
        str(path),
        "--project",
        "GM-SC",
        "--user",
        "surveyor",
        "--verbosity",
        "0",
        *args,
        stdout=StringIO(),
    )


@pytest.mark.django_db(databases=DATABASES)
def test_a_commit_by_the_command_leaves_one_record(
    project, surveyor, corpus_dir, trail
):
    import_command(corpus.shapefile_zip(corpus_dir), "--commit")

    batch = ImportBatch.objects.get()
    [record] = trail()
    assert (record.action, record.actor, record.object_kind, record.object_id) == (
        "import_committed",
        surveyor,
        "import_batch",
        batch.pk,
    )
    assert (record.object_code, record.project, record.project_code) == (
        "parcels.zip",
        project,
        "GM-SC",
    )
    assert record.changes["created"] == 6
    assert record.changes["updated"] == 0
    assert record.changes["sha256"] == batch.sha256
    assert record.changes["layer"] == "parcels"
    assert (record.channel, record.remote_addr, record.host) == ("command", None, HOST)


@pytest.mark.django_db(databases=DATABASES)
def test_a_dry_run_and_a_refused_file_leave_no_record(
    project, surveyor, corpus_dir, trail
):
    import_command(corpus.shapefile_zip(corpus_dir))
    with pytest.raises(SystemExit):
        import_command(corpus.with_duplicate_codes(corpus_dir), "--commit")

    assert trail() == []


@pytest.mark.django_db(databases=DATABASES)
def test_a_resurvey_is_recorded_with_its_counts_and_revisions(
    project, surveyor, corpus_dir, trail
):
    run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )
    moved = [dict(parcel) for parcel in corpus.PARCELS]
    # GM-T-0001 moved 0.5 m west, as in test_commit's re-survey.
    moved[0]["geometry"] = box(492099.5, 2517200.0, 492159.5, 2517260.0)
    again = run_import(
        corpus.shapefile_zip(corpus_dir / "moved", parcels=moved),
        project=project,
        actor=surveyor,
        commit=True,
    )

    _first, second = trail()
    assert (second.action, second.object_id) == ("import_committed", again.pk)
    assert (
        second.changes["created"],
        second.changes["updated"],
        second.changes["unchanged"],
    ) == (0, 1, 5)
    # Which parcels it re-surveyed, and their previous shapes, are its revisions.
    assert list(
        ParcelRevision.objects.filter(import_batch_id=again.pk).values_list(
            "parcel__code", flat=True
        )
    ) == ["GM-T-0001"]


@pytest.mark.django_db(databases=DATABASES)
def test_an_undo_by_the_command_leaves_one_record(
    project, surveyor, registry_admin, corpus_dir, trail
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )

    call_command(
        "undo_import", str(batch.pk), "--user", "registry_admin", stdout=StringIO()
    )

    _committed, undone = trail()
    assert (undone.action, undone.actor, undone.object_id) == (
        "import_undone",
        registry_admin,
        batch.pk,
    )
    assert (undone.project_code, undone.channel) == ("GM-SC", "command")


@pytest.mark.django_db(databases=DATABASES)
def test_an_undo_on_the_page_is_recorded_with_the_browser(
    project, surveyor, registry_admin, corpus_dir, login, trail
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )
    browser = login(registry_admin, REMOTE_ADDR=OFFICE, HTTP_USER_AGENT="Firefox")

    response = browser.post(f"/imports/{batch.pk}/undo/")

    assert response.status_code == 302
    [undone] = trail(action="import_undone")
    assert (undone.channel, undone.remote_addr, undone.user_agent) == (
        "web",
        OFFICE,
        "Firefox",
    )


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_a_commit_queued_through_the_api_carries_the_requests_origin(
    queue, project, surveyor, corpus_dir, trail
):
    token = Token.objects.create(user=surveyor)
    client = Client(
        HTTP_AUTHORIZATION=f"Token {token.key}",
        REMOTE_ADDR=OFFICE,
        HTTP_USER_AGENT=SURVEY_TOOL,
    )
    with open(corpus.shapefile_zip(corpus_dir), "rb") as handle:
        response = client.post(
            "/api/imports/", {"file": handle, "project": "GM-SC", "commit": "true"}
        )
    assert response.status_code == 202

    run_worker()

    [record] = trail(action="import_committed")
    assert (record.actor, record.object_id) == (surveyor, response.json()["id"])
    assert (record.channel, record.remote_addr, record.user_agent, record.host) == (
        "api",
        OFFICE,
        SURVEY_TOOL,
        HOST,
    )
    assert record.changes["created"] == 6


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_a_commit_clicked_on_the_page_carries_the_browsers_origin(
    queue, project, surveyor, corpus_dir, login, trail
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
    )
    assert batch.state == "checked"
    browser = login(surveyor, REMOTE_ADDR=OFFICE, HTTP_USER_AGENT="Chrome")

    assert browser.post(f"/imports/{batch.pk}/commit/").status_code == 302
    run_worker()

    [record] = trail(action="import_committed")
    assert (record.actor, record.channel, record.remote_addr, record.user_agent) == (
        surveyor,
        "web",
        OFFICE,
        "Chrome",
    )
