"""The surveyors' import pages: upload, the check on the queue, commit, undo.

The flow tests run the real procrastinate queue in this process
(``helpers.run_worker``); its jobs run in threads of their own, so those tests use
a transactional database. Pages are Chinese first.
"""

from pathlib import Path

import pytest
from django.urls import reverse

from importers.models import ImportBatch, SavedMapping
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    registry_state,
    run_import,
    run_worker,
)

UPLOAD = reverse("importers:upload")
ON_THE_QUEUE = pytest.mark.django_db(transaction=True, databases=DATABASES)


def upload(client, path: Path, project, **fields):
    with open(path, "rb") as handle:
        return client.post(
            UPLOAD,
            {"file": handle, "project": project.pk, "layer": "parcels", **fields},
        )


def page(client, batch: ImportBatch) -> str:
    response = client.get(reverse("importers:batch", args=[batch.pk]))
    assert response.status_code == 200
    return response.content.decode()


def uploads_stored(settings) -> list[Path]:
    directory = Path(settings.IMPORT_UPLOAD_DIR)
    return sorted(directory.rglob("*")) if directory.exists() else []


@ON_THE_QUEUE
def test_an_upload_is_checked_on_the_queue_then_committed(
    queue, login, project, surveyor, corpus_dir, settings
):
    client = login(surveyor)
    assert "上传测绘成果文件" in client.get(UPLOAD).content.decode()

    response = upload(client, corpus.shapefile_zip(corpus_dir), project)

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("importers:batch", args=[batch.pk])
    assert batch.state == ImportBatch.State.QUEUED
    assert Path(batch.upload_path).parent.parent == Path(settings.IMPORT_UPLOAD_DIR)
    queued = page(client, batch)
    assert "排队中" in queued
    assert '<meta http-equiv="refresh"' in queued

    run_worker()

    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.CHECKED
    assert batch.progress == 100
    checked = page(client, batch)
    for chinese in (
        "已检查，可提交",
        "检查结果",
        "通过：该文件可以提交。",
        "前几行（解码后）",
        "原村民 王喆 / 红坳村",
        "提交本次导入",
    ):
        assert chinese in checked
    assert '<meta http-equiv="refresh"' not in checked
    assert Parcel.objects.count() == 0

    english = page(login(surveyor, language="en"), batch)
    assert "Accepted: the file can be committed." in english
    assert "原村民 王喆 / 红坳村" in english

    response = client.post(reverse("importers:commit", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.QUEUED

    run_worker()

    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.COMMITTED
    assert (batch.created, batch.updated, batch.unchanged) == (6, 0, 0)
    committed = page(client, batch)
    assert "已提交" in committed
    assert '<dd id="batch-counts">6 / 0 / 0</dd>' in committed
    assert 'id="commit"' not in committed
    assert Parcel.objects.count() == 6


@ON_THE_QUEUE
def test_a_refused_upload_shows_why_and_commits_nothing(
    queue, login, project, surveyor, corpus_dir
):
    client = login(surveyor)
    upload(client, corpus.not_a_zip(corpus_dir), project)
    batch = ImportBatch.objects.get()

    run_worker()

    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.REFUSED
    refused = page(client, batch)
    assert "not_a_zip.zip 不是有效的压缩包。" in refused
    assert "not_a_zip.zip is not a valid zip archive." in refused
    assert 'id="commit"' not in refused

    response = client.post(reverse("importers:commit", args=[batch.pk]), follow=True)

    assert "只有已通过检查的批次才能提交。" in response.content.decode()
    run_worker()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.REFUSED
    assert Parcel.objects.count() == 0


@ON_THE_QUEUE
def test_bad_rows_are_listed_in_both_languages(
    queue, login, project, surveyor, corpus_dir
):
    client = login(surveyor)
    upload(client, corpus.with_duplicate_codes(corpus_dir), project)

    run_worker()

    refused = page(client, ImportBatch.objects.get())
    assert "已拒绝：以下问题修正之前，不会写入任何数据。" in refused
    assert "编码 GM-T-0002 已被第 2 行使用。" in refused
    assert "The code GM-T-0002 is already used by row 2." in refused
    assert Parcel.objects.count() == 0


@ON_THE_QUEUE
def test_a_refused_check_can_be_run_again_with_another_encoding(
    queue, login, project, surveyor, corpus_dir
):
    client = login(surveyor)
    upload(client, corpus.gbk_with_lying_cpg(corpus_dir), project)
    run_worker()
    first = ImportBatch.objects.get()
    assert first.state == ImportBatch.State.REFUSED

    response = client.post(
        reverse("importers:recheck", args=[first.pk]), {"encoding": "GB18030"}
    )

    second = ImportBatch.objects.exclude(pk=first.pk).get()
    assert response["Location"] == reverse("importers:batch", args=[second.pk])
    run_worker()
    second.refresh_from_db()
    assert second.state == ImportBatch.State.CHECKED
    assert (second.encoding, second.encoding_source) == ("gb18030", "override")
    assert second.sha256 == first.sha256
    assert "原村民 王喆 / 红坳村" in page(client, second)


@ON_THE_QUEUE
def test_a_registry_admin_undoes_a_committed_import_from_its_page(
    queue, login, project, surveyor, registry_admin, corpus_dir
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )
    admin = login(registry_admin)
    assert 'id="undo"' in page(admin, batch)
    assert 'id="undo"' not in page(login(surveyor), batch)

    response = admin.post(reverse("importers:undo", args=[batch.pk]), follow=True)

    assert "已撤销本次导入。" in response.content.decode()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.UNDONE
    assert Parcel.objects.count() == 0


@pytest.mark.django_db(databases=DATABASES)
class TestAccess:
    @pytest.mark.parametrize(
        "persona", ["outsider", "planner", "case_officer", "analyst"]
    )
    def test_others_may_not_open_the_upload_page(self, persona, request, login):
        client = login(request.getfixturevalue(persona))

        assert client.get(UPLOAD).status_code == 403

    @pytest.mark.parametrize(
        "persona", ["outsider", "planner", "case_officer", "analyst"]
    )
    def test_others_may_not_upload(
        self, persona, request, login, project, corpus_dir, settings
    ):
        client = login(request.getfixturevalue(persona))

        response = upload(client, corpus.shapefile_zip(corpus_dir), project)

        assert response.status_code == 403
        assert ImportBatch.objects.count() == 0
        assert uploads_stored(settings) == []

    def test_anonymous_visitors_are_sent_to_log_in(self, client, project, corpus_dir):
        assert client.get(UPLOAD)["Location"] == f"/accounts/login/?next={UPLOAD}"

        response = upload(client, corpus.shapefile_zip(corpus_dir), project)

        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert ImportBatch.objects.count() == 0

    def test_a_surveyor_may_not_upload_into_another_project(
        self, login, project, surveyor_elsewhere, corpus_dir, settings
    ):
        client = login(surveyor_elsewhere)
        assert client.get(UPLOAD).status_code == 200

        response = upload(client, corpus.shapefile_zip(corpus_dir), project)

        assert response.status_code == 200
        assert response.context["form"].errors["project"]
        assert ImportBatch.objects.count() == 0
        assert uploads_stored(settings) == []

    def test_a_registry_admin_may_upload_into_any_project(
        self, login, project, registry_admin, corpus_dir
    ):
        response = upload(
            login(registry_admin), corpus.shapefile_zip(corpus_dir), project
        )

        assert response.status_code == 302
        assert ImportBatch.objects.get().created_by == registry_admin

    @pytest.mark.parametrize(
        "persona", ["case_officer", "planner", "outsider", "surveyor_elsewhere"]
    )
    def test_others_may_not_see_a_batch(
        self, persona, request, login, project, surveyor, corpus_dir
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )
        client = login(request.getfixturevalue(persona))

        response = client.get(reverse("importers:batch", args=[batch.pk]))

        assert response.status_code == 403

    def test_the_list_shows_the_batches_of_ones_projects(
        self, login, project, surveyor, surveyor_elsewhere, corpus_dir
    ):
        run_import(corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor)

        mine = login(surveyor).get(reverse("importers:list"))
        theirs = login(surveyor_elsewhere).get(reverse("importers:list"))

        assert list(mine.context["batches"]) == list(ImportBatch.objects.all())
        assert list(theirs.context["batches"]) == []

    @pytest.mark.parametrize("action", ["commit", "undo", "recheck", "save_mapping"])
    @pytest.mark.parametrize("persona", ["surveyor", "registry_admin"])
    def test_actions_refuse_get_and_change_nothing(
        self, action, persona, request, login, project, surveyor, corpus_dir
    ):
        checked = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )
        before = registry_state()
        client = login(request.getfixturevalue(persona))

        response = client.get(reverse(f"importers:{action}", args=[checked.pk]))

        assert response.status_code == 405
        checked.refresh_from_db()
        assert checked.state == ImportBatch.State.CHECKED
        assert ImportBatch.objects.count() == 1
        assert SavedMapping.objects.count() == 0
        assert registry_state() == before

    def test_a_surveyor_may_not_undo(self, login, project, surveyor, corpus_dir):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        response = login(surveyor).post(reverse("importers:undo", args=[batch.pk]))

        assert response.status_code == 403
        batch.refresh_from_db()
        assert batch.state == ImportBatch.State.COMMITTED
        assert Parcel.objects.count() == 6


@pytest.mark.django_db(databases=DATABASES)
def test_a_saved_mapping_is_used_for_the_next_file_with_the_same_fields(
    login, project, surveyor, corpus_dir
):
    mapping = {
        "fields": {"code": "DKBM", "land_class": "QSXZ", "declared_area": "MJ"},
        "values": {"land_class": {"国有划拨": "unfinished_expropriation"}},
    }
    first = run_import(
        corpus.with_unknown_land_class(corpus_dir / "2024"),
        project=project,
        actor=surveyor,
        mapping=mapping,
    )
    assert first.state == ImportBatch.State.CHECKED

    response = login(surveyor).post(
        reverse("importers:save_mapping", args=[first.pk]), {"name": "光明测绘院"}
    )

    assert response.status_code == 302
    saved = SavedMapping.objects.get()
    assert (saved.name, saved.layer, saved.created_by) == (
        "光明测绘院",
        "parcels",
        surveyor,
    )
    again = run_import(
        corpus.with_unknown_land_class(corpus_dir / "2025"),
        project=project,
        actor=surveyor,
    )
    assert again.state == ImportBatch.State.CHECKED
    assert again.mapping == {"layer": "parcels", **mapping}
