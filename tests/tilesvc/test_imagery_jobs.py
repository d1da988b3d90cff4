"""Orthophoto conversion on the real procrastinate queue: progress, failure, sweep.

The upload page only checks the header and queues the job; the worker
(``tests.importers.helpers.run_worker``, the real queue in this process) converts
it. Jobs run in threads with connections of their own, so these tests use a
transactional database.
"""

import os
import time
from pathlib import Path

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from tests.importers.helpers import run_worker
from tests.tilesvc.test_imagery import (
    BLUE,
    HAN,
    RED,
    ZOOM,
    damaged_geotiff,
    decode,
    files_under,
    pixel,
    write_geotiff,
)
from tests.tilesvc.test_imagery_views import upload
from tilesvc import imagery, tasks
from tilesvc.models import Orthophoto

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_queue"),
]


@pytest.fixture
def geotiff(tmp_path, place) -> Path:
    return write_geotiff(tmp_path / "航拍.tif", west=place.west, north=place.north)


@pytest.fixture
def damaged(tmp_path, place) -> Path:
    """A GeoTIFF whose header is sound and whose pixels cannot be decoded."""
    return damaged_geotiff(tmp_path / "cut.tif", place)


@pytest.fixture
def progress_seen(monkeypatch):
    """Return the (percent, stage) pairs the conversion writes to its row."""
    seen = []
    recorder = imagery._progress_recorder

    def spying(orthophoto):
        record = recorder(orthophoto)

        def spied(percent, stage, **fields):
            seen.append((percent, stage))
            record(percent, stage, **fields)

        return spied

    monkeypatch.setattr(imagery, "_progress_recorder", spying)
    return seen


def status_of(client, orthophoto) -> dict:
    response = client.get(f"/imagery/{orthophoto.pk}.json")
    assert response.status_code == 200
    return response.json()


def test_an_upload_is_converted_by_the_queue_with_its_progress(
    login, surveyor, planner, project, geotiff, imagery_dir, place, progress_seen,
    monkeypatch,
):  # fmt: skip
    monkeypatch.setattr(imagery, "WINDOW_PX", 512)  # several windows to count
    client = login(surveyor)
    assert upload(client, geotiff, project).status_code == 302
    orthophoto = Orthophoto.objects.get()
    job = ProcrastinateJob.objects.get(task_name="tilesvc.convert_orthophoto")
    assert (job.queue_name, job.args) == ("imagery", {"orthophoto_id": orthophoto.pk})
    queued = status_of(client, orthophoto)
    assert (queued["state"], queued["progress"], queued["tilejson"]) == (
        "queued",
        0,
        None,
    )
    assert client.get(f"/imagery/{orthophoto.pk}/tilejson.json").status_code == 404

    run_worker()

    orthophoto.refresh_from_db()
    assert (orthophoto.state, orthophoto.progress, orthophoto.stage) == (
        "ready",
        100,
        "",
    )
    assert orthophoto.upload == "" and orthophoto.converted_at is not None
    assert files_under(imagery_dir) == [imagery.cog_path(orthophoto)]
    stages = [stage for _percent, stage in progress_seen]
    assert stages[0] == stages[1] == "reprojecting"
    assert stages[-2:] == ["compressing", "checking"]
    percents = [percent for percent, _stage in progress_seen]
    assert percents == sorted(percents) and percents[-1] == 97
    assert len(set(percents)) >= 5  # the windows move it, not just the stages
    ready = status_of(login(planner), orthophoto)
    assert ready["state"] == "ready" and ready["progress"] == 100
    assert (
        ready["tilejson"] == f"http://testserver/imagery/{orthophoto.pk}/tilejson.json"
    )
    tile = login(planner).get(
        f"/imagery/{orthophoto.pk}/tiles/{ZOOM}/{place.tile.x}/{place.tile.y}.png"
    )
    rgba = decode(tile.content)
    assert pixel(rgba, place.tile, *place.red) == (*RED, 255)
    assert pixel(rgba, place.tile, *place.blue) == (*BLUE, 255)


def test_a_file_that_fails_to_convert_says_why_and_leaves_nothing(
    login, surveyor, project, damaged, imagery_dir
):
    client = login(surveyor)
    assert upload(client, damaged, project, title="坏文件").status_code == 302

    run_worker()

    orthophoto = Orthophoto.objects.get()
    assert orthophoto.state == "failed"
    assert orthophoto.failure["en"].startswith("cut.tif could not be converted: ")
    assert files_under(imagery_dir) == []  # no COG, no upload, no scratch
    status = status_of(client, orthophoto)
    assert status["failure"] == orthophoto.failure
    assert status["state_label"] == "失败"
    listing = client.get(f"/imagery/projects/{project.pk}/").content.decode()
    assert orthophoto.failure["zh"] in listing and orthophoto.failure["en"] in listing
    tile = client.get(f"/imagery/{orthophoto.pk}/tiles/16/1/1.png")
    assert tile.status_code == 404
    assert tile.json()["error"]["en"] == (
        f"Orthophoto no. {orthophoto.pk} has no tiles: its conversion is Failed."
    )
    # A failed delivery may be sent again (once it is repaired).
    assert upload(client, damaged, project, title="再传").status_code == 302
    assert Orthophoto.objects.count() == 2


def test_the_map_offers_only_converted_orthophotos(login, surveyor, project, geotiff):
    upload(login(surveyor), geotiff, project)

    assert list(imagery.orthophoto_list(project=project)) == []
    run_worker()
    assert [o.state for o in imagery.orthophoto_list(project=project)] == ["ready"]


def test_the_status_needs_a_login_and_a_role(client, login, outsider, surveyor,
                                             project, geotiff):  # fmt: skip
    upload(login(surveyor), geotiff, project)
    orthophoto = Orthophoto.objects.get()

    assert client.get(f"/imagery/{orthophoto.pk}.json").status_code == 401
    assert login(outsider).get(f"/imagery/{orthophoto.pk}.json").status_code == 403
    assert login(surveyor).get("/imagery/999999.json").status_code == 404


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_sweep_fails_interrupted_conversions_and_removes_their_files(
    login, surveyor, project, geotiff, imagery_dir
):
    upload(login(surveyor), geotiff, project)
    orthophoto = Orthophoto.objects.get()
    kept = imagery_dir / orthophoto.upload
    # A worker killed mid-conversion: the row converting, its job gone, scratch
    # left behind; and a request's scratch from long ago, an orphaned upload.
    Orthophoto.objects.filter(pk=orthophoto.pk).update(state="converting")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")
    scratch = imagery_dir / "tmp"
    (scratch / f"convert-{orthophoto.pk}-x").mkdir()
    (scratch / f"convert-{orthophoto.pk}-x" / "warped.tif").write_bytes(b"half")
    (scratch / "upload-old").mkdir()
    (scratch / "upload-old" / "upload.tif").write_bytes(b"old")
    _age(scratch / "upload-old" / "upload.tif", 2 * imagery.ORPHAN_AGE_S)
    _age(scratch / "upload-old", 2 * imagery.ORPHAN_AGE_S)
    (scratch / "upload-now").mkdir()  # a request receiving a file right now
    orphan = imagery_dir / "incoming" / "feedface.tif"
    orphan.write_bytes(b"nobody's")
    _age(orphan, 2 * imagery.ORPHAN_AGE_S)

    swept = tasks.sweep_imagery(timestamp=0)

    assert swept == {"interrupted": 1, "scratch": 2, "uploads": 1}
    orthophoto.refresh_from_db()
    assert orthophoto.state == "failed"
    assert orthophoto.failure["en"] == (
        "The conversion of 航拍.tif was interrupted (the worker stopped); "
        "upload it again."
    )
    assert HAN.search(orthophoto.failure["zh"].replace("航拍", ""))
    assert not kept.exists() and not orphan.exists()
    assert sorted(p.name for p in scratch.iterdir()) == ["upload-now"]


def test_the_sweep_spares_a_running_conversion(
    login, surveyor, project, geotiff, imagery_dir
):
    upload(login(surveyor), geotiff, project)
    orthophoto = Orthophoto.objects.get()
    Orthophoto.objects.filter(pk=orthophoto.pk).update(state="converting")
    (imagery_dir / "tmp" / f"convert-{orthophoto.pk}-x").mkdir()

    # Its job is still to do: the row and its files are left alone.
    assert tasks.interrupted() == []
    assert imagery.sweep(interrupted=tasks.interrupted())["scratch"] == 0
    assert (imagery_dir / orthophoto.upload).exists()


def test_the_sweep_leaves_a_directory_another_database_marked_alone(
    login, surveyor, project, geotiff, imagery_dir
):
    upload(login(surveyor), geotiff, project)
    (imagery_dir / ".database").write_text("elsewhere:5432/landreg\n")
    orphan = imagery_dir / "incoming" / "feedface.tif"
    orphan.write_bytes(b"theirs")
    _age(orphan, 2 * imagery.ORPHAN_AGE_S)

    assert imagery.sweep() == {"interrupted": 0, "scratch": 0, "uploads": 0}
    assert orphan.exists()


def test_the_limits_allow_large_deliveries_with_bounded_windows():
    limits = imagery.limits()

    assert limits.pixels == 1_000_000_000  # a 2.5 km project at 8 cm
    assert limits.side_px == 40_000
    # The most one window holds: 2048² pixels of 4 bytes (RGB and alpha).
    assert imagery.WINDOW_PX**2 * 4 == 16 * 1024**2


def test_a_script_follows_its_upload_with_an_api_token(
    login, surveyor, project, geotiff
):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    upload(login(surveyor), geotiff, project)
    orthophoto = Orthophoto.objects.get()
    script = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=surveyor)}")

    before = script.get(f"/imagery/{orthophoto.pk}.json").json()
    run_worker()
    after = script.get(f"/imagery/{orthophoto.pk}.json").json()

    assert (before["state"], before["progress"]) == ("queued", 0)
    assert (after["state"], after["progress"], after["failure"]) == ("ready", 100, None)
    assert script.get(after["tilejson"]).json()["tilejson"] == "3.0.0"


def _api_post(token, path: Path, project, **fields):
    from django.test import Client

    with open(path, "rb") as handle:
        return Client(HTTP_AUTHORIZATION=f"Token {token}").post(
            "/imagery/api/",
            {"file": handle, "project": project.code, "title": "脚本上传", **fields},
        )


def test_a_script_uploads_an_orthophoto_through_the_api(
    surveyor, project, geotiff, imagery_dir
):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=surveyor)

    response = _api_post(token, geotiff, project, captured_on="2026-11-30")

    assert response.status_code == 202
    orthophoto = Orthophoto.objects.get()
    assert response["Location"] == f"/imagery/{orthophoto.pk}.json"
    body = response.json()
    assert (body["state"], body["progress"], body["project"]) == ("queued", 0, "GM-SC")
    assert str(orthophoto.captured_on) == "2026-11-30"
    run_worker()
    orthophoto.refresh_from_db()
    assert orthophoto.state == "ready"


def test_the_api_refuses_in_both_languages_and_keeps_nothing(
    planner, surveyor, project, geotiff, tmp_path, settings, imagery_dir
):
    from rest_framework.authtoken.models import Token

    not_tiff = tmp_path / "ortho.tif"
    not_tiff.write_bytes(b"<html>not an image</html>")
    settings.IMAGERY_LIMITS = {"upload_bytes": 100_000}
    big = tmp_path / "big.tif"
    big.write_bytes(b"II*\x00" + bytes(3_000_000))
    surveyor_token = Token.objects.create(user=surveyor)

    not_a_surveyor = _api_post(Token.objects.create(user=planner), geotiff, project)
    not_a_geotiff = _api_post(surveyor_token, not_tiff, project)
    too_large = _api_post(surveyor_token, big, project)

    assert not_a_surveyor.status_code == 403
    assert not_a_surveyor.json()["error"]["en"] == (
        "You may not upload orthophotos to project GM-SC."
    )
    assert not_a_geotiff.status_code == 400
    assert not_a_geotiff.json()["error"]["en"] == (
        "ortho.tif is not a GeoTIFF. Upload the orthophoto as a GeoTIFF (.tif)."
    )
    assert too_large.status_code == 400
    assert too_large.json()["error"]["en"] == (
        "big.tif is larger than 100,000 bytes, the most an orthophoto may be."
    )
    for refused in (not_a_surveyor, not_a_geotiff, too_large):
        assert HAN.search(refused.json()["error"]["zh"])
    assert Orthophoto.objects.count() == 0
    assert files_under(imagery_dir) == []
