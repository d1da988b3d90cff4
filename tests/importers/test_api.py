"""The import REST API: multipart upload with a token, then poll, commit, undo."""

import json
from pathlib import Path

import pytest
from django.test import Client
from procrastinate.contrib.django.models import ProcrastinateJob
from rest_framework.authtoken.models import Token

from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    assert_chinese,
    registry_state,
    run_import,
    run_worker,
)

BATCHES = "/api/imports/"


def api(user=None) -> Client:
    """Return a client sending ``user``'s token (or none)."""
    if user is None:
        return Client()
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def post_file(client, path: Path, **fields):
    with open(path, "rb") as handle:
        return client.post(BATCHES, {"file": handle, "project": "GM-SC", **fields})


def uploads_stored(settings) -> list[Path]:
    directory = Path(settings.IMPORT_UPLOAD_DIR)
    return sorted(directory.rglob("*")) if directory.exists() else []


@pytest.mark.django_db(databases=DATABASES)
class TestUpload:
    def test_an_upload_is_queued(self, project, surveyor, corpus_dir):
        response = post_file(api(surveyor), corpus.shapefile_zip(corpus_dir))

        assert response.status_code == 202
        batch = ImportBatch.objects.get()
        assert response["Location"] == f"/api/imports/{batch.pk}/"
        body = response.json()
        assert (body["id"], body["project"], body["state"], body["created_by"]) == (
            batch.pk,
            "GM-SC",
            "queued",
            "surveyor",
        )
        assert body["file_name"] == "parcels.zip"
        job = ProcrastinateJob.objects.get()
        assert (job.task_name, job.queue_name, job.status) == (
            "importers.run_batch",
            "imports",
            "todo",
        )
        assert job.args == {
            "batch_id": batch.pk,
            "commit": False,
            "actor_id": None,
            # For the audit record of a commit (registry.audit_origin).
            "origin": {"channel": "api", "remote_addr": "127.0.0.1", "user_agent": ""},
        }

    def test_options_reach_the_batch(self, project, surveyor, corpus_dir):
        response = post_file(
            api(surveyor),
            corpus.shapefile_zip(corpus_dir),
            crs="EPSG:4547",
            encoding="GB18030",
            land_class="collective",
            repair="true",
            source_layer="parcels",
        )

        assert response.status_code == 202
        options = ImportBatch.objects.get().options
        assert {k: options[k] for k in ("crs", "encoding", "land_class", "repair")} == {
            "crs": "EPSG:4547",
            "encoding": "GB18030",
            "land_class": "collective",
            "repair": True,
        }
        assert options["source_layer"] == "parcels"

    def test_a_mapping_is_sent_as_json(self, project, surveyor, corpus_dir):
        mapping = {
            "fields": {"code": "地块编码", "land_class": "权属性质"},
            "values": {"land_class": {"国有划拨": "collective"}},
        }

        response = post_file(
            api(surveyor),
            corpus.with_unknown_land_class(corpus_dir, fields="chinese"),
            mapping=json.dumps(mapping, ensure_ascii=False),
        )

        assert response.status_code == 202
        assert ImportBatch.objects.get().options["mapping"] == mapping

    def test_an_unknown_land_class_is_a_bad_request(
        self, project, surveyor, corpus_dir
    ):
        response = post_file(
            api(surveyor), corpus.shapefile_zip(corpus_dir), land_class="farm"
        )

        assert response.status_code == 400
        assert "land_class" in response.json()
        assert ImportBatch.objects.count() == 0

    def test_anonymous_requests_are_refused(self, project, corpus_dir, settings):
        client = api()

        assert client.get(BATCHES).status_code in (401, 403)
        assert post_file(client, corpus.shapefile_zip(corpus_dir)).status_code in (
            401,
            403,
        )
        assert ImportBatch.objects.count() == 0
        assert uploads_stored(settings) == []

    def test_a_wrong_token_is_refused(self, project, corpus_dir):
        client = Client(HTTP_AUTHORIZATION="Token " + "0" * 40)

        response = post_file(client, corpus.shapefile_zip(corpus_dir))

        assert response.status_code in (401, 403)
        assert ImportBatch.objects.count() == 0

    @pytest.mark.parametrize(
        "persona",
        ["outsider", "planner", "case_officer", "analyst", "surveyor_elsewhere"],
    )
    def test_others_may_not_upload(
        self, persona, request, project, corpus_dir, settings
    ):
        client = api(request.getfixturevalue(persona))

        response = post_file(client, corpus.shapefile_zip(corpus_dir))

        assert response.status_code == 403
        error = response.json()["error"]
        assert error["en"] == "You may not import into this project."
        assert_chinese(error["zh"], error["en"])
        assert ImportBatch.objects.count() == 0
        assert uploads_stored(settings) == []
        assert ProcrastinateJob.objects.count() == 0


@pytest.mark.django_db(databases=DATABASES)
class TestBatches:
    def test_batches_are_listed_to_the_projects_surveyors(
        self, project, surveyor, case_officer, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        assert [b["id"] for b in api(surveyor).get(BATCHES).json()] == [batch.pk]
        assert api(case_officer).get(BATCHES).json() == []

    def test_a_batch_shows_its_report(self, project, surveyor, corpus_dir):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        body = api(surveyor).get(f"{BATCHES}{batch.pk}/").json()

        assert (body["state"], body["progress"], body["encoding"]) == (
            "checked",
            100,
            "gb18030",
        )
        assert body["report"]["counts"] == SIX_VALID

    def test_others_do_not_find_a_batch(
        self, project, surveyor, case_officer, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        response = api(case_officer).get(f"{BATCHES}{batch.pk}/")

        assert response.status_code == 404
        assert response.json()["error"]["en"] == "No such import batch."

    @pytest.mark.parametrize("action", ["commit", "undo"])
    def test_get_on_an_action_is_refused_and_changes_nothing(
        self, action, project, surveyor, registry_admin, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )
        before = registry_state()

        for user in (surveyor, registry_admin):
            response = api(user).get(f"{BATCHES}{batch.pk}/{action}/")
            assert response.status_code == 405

        batch.refresh_from_db()
        assert batch.state == ImportBatch.State.CHECKED
        assert ProcrastinateJob.objects.count() == 0
        assert registry_state() == before

    def test_only_a_checked_batch_can_be_committed(self, project, surveyor, corpus_dir):
        batch = run_import(
            corpus.not_a_zip(corpus_dir), project=project, actor=surveyor
        )

        response = api(surveyor).post(f"{BATCHES}{batch.pk}/commit/")

        assert response.status_code == 409
        assert response.json()["error"] == {
            "zh": "只有已通过检查的批次才能提交。",
            "en": "Only a checked, accepted batch can be committed.",
        }
        assert ProcrastinateJob.objects.count() == 0

    def test_others_may_not_commit(self, project, surveyor, case_officer, corpus_dir):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        response = api(case_officer).post(f"{BATCHES}{batch.pk}/commit/")

        assert response.status_code == 404
        assert ProcrastinateJob.objects.count() == 0

    def test_only_registry_admins_may_undo(
        self, project, surveyor, registry_admin, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        refused = api(surveyor).post(f"{BATCHES}{batch.pk}/undo/")
        assert refused.status_code == 403
        assert refused.json()["error"]["en"] == (
            "Only registry administrators may undo an import."
        )
        assert Parcel.objects.count() == 6

        undone = api(registry_admin).post(f"{BATCHES}{batch.pk}/undo/")
        assert undone.status_code == 200
        assert undone.json()["state"] == "undone"
        assert Parcel.objects.count() == 0

    def test_an_undo_that_is_refused_says_why(
        self, project, surveyor, registry_admin, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        response = api(registry_admin).post(f"{BATCHES}{batch.pk}/undo/")

        assert response.status_code == 400
        error = response.json()["error"]
        assert error["en"] == (
            f"Batch #{batch.pk} is Checked, ready to commit; only committed imports "
            "can be undone."
        )
        assert_chinese(error["zh"], error["en"])


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_an_upload_is_checked_on_the_queue_then_committed(
    queue, project, surveyor, corpus_dir
):
    client = api(surveyor)
    batch_id = post_file(client, corpus.shapefile_zip(corpus_dir)).json()["id"]

    run_worker()

    checked = client.get(f"{BATCHES}{batch_id}/").json()
    assert (checked["state"], checked["progress"]) == ("checked", 100)
    assert checked["report"]["counts"] == SIX_VALID
    assert checked["report"]["encoding"] == {"name": "gb18030", "source": "gb18030"}
    assert Parcel.objects.count() == 0

    response = client.post(f"{BATCHES}{batch_id}/commit/")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"

    run_worker()

    committed = client.get(f"{BATCHES}{batch_id}/").json()
    assert committed["state"] == "committed"
    assert (committed["created"], committed["updated"], committed["unchanged"]) == (
        6,
        0,
        0,
    )
    assert Parcel.objects.count() == 6


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_an_upload_can_ask_to_be_committed_at_once(
    queue, project, surveyor, corpus_dir
):
    client = api(surveyor)
    response = post_file(client, corpus.shapefile_zip(corpus_dir), commit="true")

    run_worker()

    body = client.get(f"{BATCHES}{response.json()['id']}/").json()
    assert (body["state"], body["created"]) == ("committed", 6)
    assert Parcel.objects.count() == 6


@pytest.mark.django_db(transaction=True, databases=DATABASES)
def test_a_refused_upload_reports_why_and_commits_nothing(
    queue, project, surveyor, corpus_dir
):
    client = api(surveyor)
    response = post_file(client, corpus.with_points(corpus_dir), commit="true")

    run_worker()

    body = client.get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["state"] == "refused"
    assert body["report"]["counts"]["rejected"] == 6
    assert body["report"]["problems"][0]["en"] == (
        "The geometry is a Point; parcels must be polygons."
    )
    assert Parcel.objects.count() == 0
