"""Orthophoto pages and tiles: upload, lists, XYZ tiles and TileJSON, by persona."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from registry.choices import Role
from tests.factories import user_with_role
from tests.tilesvc.test_imagery import (
    BLUE,
    RED,
    ZOOM,
    decode,
    files_under,
    pixel,
    write_geotiff,
)
from tilesvc import imagery
from tilesvc.models import Orthophoto

UPLOAD = "/imagery/upload/"


@pytest.fixture
def geotiff(tmp_path, place) -> Path:
    return write_geotiff(tmp_path / "航拍.tif", west=place.west, north=place.north)


@pytest.fixture
def orthophoto(geotiff, project, surveyor) -> Orthophoto:
    return imagery.orthophoto_ingest(
        project=project, upload_path=geotiff, title="科学城 2026-11", actor=surveyor
    )


def tile_url(orthophoto, tile, extension="png") -> str:
    return f"/imagery/{orthophoto.pk}/tiles/{tile.z}/{tile.x}/{tile.y}.{extension}"


def upload(client, path: Path, project, title="科学城 2026-11", **fields):
    with open(path, "rb") as handle:
        return client.post(
            UPLOAD,
            {"project": project.pk, "title": title, "file": handle, **fields},
        )


def test_the_urls_are_where_the_brief_says():
    assert reverse("imagery:upload") == UPLOAD
    assert (
        reverse("imagery:tile-png", args=[7, 1, 2, 3]) == "/imagery/7/tiles/1/2/3.png"
    )
    assert reverse("imagery:tilejson", args=[7]) == "/imagery/7/tilejson.json"


def test_a_surveyor_uploads_an_orthophoto_through_the_page(
    login, surveyor, project, geotiff, imagery_dir
):
    client = login(surveyor)
    form = client.get(UPLOAD, {"project": project.pk})
    assert form.status_code == 200
    page = form.content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert "csrfmiddlewaretoken" in page
    assert f'<option value="{project.pk}" selected>' in page

    response = upload(client, geotiff, project, captured_on="2026-11-20")

    orthophoto = Orthophoto.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/imagery/projects/{project.pk}/"
    assert orthophoto.source_name == "航拍.tif"
    assert str(orthophoto.captured_on) == "2026-11-20"
    # Checked and kept; converted by the queue (tests/tilesvc/test_imagery_jobs.py).
    assert (orthophoto.state, orthophoto.progress) == ("queued", 0)
    assert files_under(imagery_dir) == [imagery_dir / orthophoto.upload]
    listing = client.get(response["Location"]).content.decode()
    assert "科学城 2026-11" in listing
    assert 'data-running="yes"' in listing
    assert f"/imagery/{orthophoto.pk}/tilejson.json" not in listing  # not yet


def test_the_upload_needs_the_csrf_token(login, surveyor, project, geotiff):
    client = login(surveyor, enforce_csrf_checks=True)

    response = upload(client, geotiff, project)

    assert response.status_code == 403
    assert Orthophoto.objects.count() == 0


def test_a_refused_file_is_explained_on_the_page_and_nothing_is_kept(
    login, surveyor, project, tmp_path, imagery_dir
):
    not_tiff = tmp_path / "ortho.tif"
    not_tiff.write_bytes(b"<html>not an image</html>")

    response = upload(login(surveyor), not_tiff, project)

    assert response.status_code == 200
    page = response.content.decode()
    assert "ortho.tif is not a GeoTIFF." in page  # the English half
    assert Orthophoto.objects.count() == 0
    assert files_under(imagery_dir) == []


def test_a_file_over_the_limit_is_stopped_while_it_arrives(
    login, surveyor, project, tmp_path, settings, imagery_dir
):
    settings.IMAGERY_LIMITS = {"upload_bytes": 100_000}
    big = tmp_path / "big.tif"
    big.write_bytes(b"II*\x00" + bytes(3_000_000))

    response = upload(login(surveyor), big, project)

    assert response.status_code == 200
    page = response.content.decode()
    assert "big.tif is larger than 100,000 bytes" in page
    assert Orthophoto.objects.count() == 0
    assert files_under(imagery_dir) == []


def test_a_planner_may_view_but_not_upload(login, planner, orthophoto, place, geotiff):
    client = login(planner)

    assert client.get(UPLOAD).status_code == 403
    assert (
        upload(client, geotiff, orthophoto.project, title="又一张").status_code == 403
    )
    listing = client.get("/imagery/")
    assert listing.status_code == 200
    assert "科学城 2026-11" in listing.content.decode()
    assert UPLOAD not in listing.content.decode()
    assert client.get(tile_url(orthophoto, place.tile)).status_code == 200
    assert client.get(f"/imagery/{orthophoto.pk}/tilejson.json").status_code == 200
    assert Orthophoto.objects.count() == 1


def test_a_surveyor_of_another_project_cannot_upload_here(
    login, other_project, project, geotiff
):
    elsewhere = user_with_role(Role.SURVEYOR, other_project, username="elsewhere")
    client = login(elsewhere)

    response = upload(client, geotiff, project)

    assert response.status_code == 200  # the form, with the choice refused
    assert 'class="refusal"' in response.content.decode()
    assert f'<option value="{project.pk}"' not in response.content.decode()
    assert Orthophoto.objects.count() == 0


def test_an_outsider_gets_403_everywhere(login, outsider, orthophoto, place):
    client = login(outsider)

    for url in (
        "/imagery/",
        f"/imagery/projects/{orthophoto.project_id}/",
        UPLOAD,
        tile_url(orthophoto, place.tile),
        f"/imagery/{orthophoto.pk}/tilejson.json",
    ):
        assert client.get(url).status_code == 403, url
    refusal = client.get(tile_url(orthophoto, place.tile)).json()
    assert refusal["code"] == "PermissionRefused"
    assert set(refusal["error"]) == {"zh", "en"}


def test_anonymous_pages_redirect_to_the_login_and_tiles_answer_401(orthophoto, place):
    client = Client()

    for url in ("/imagery/", UPLOAD):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/")
    for url in (
        tile_url(orthophoto, place.tile),
        f"/imagery/{orthophoto.pk}/tilejson.json",
    ):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.json()["description"] == (
            "Log in, or send an API token, to read map tiles."
        )
        assert "瓦片" in response.json()["error"]["zh"]


def test_a_gis_client_reads_tiles_with_a_token(planner, orthophoto, place):
    token = Token.objects.create(user=planner)
    client = Client(headers={"Authorization": f"Token {token.key}"})

    response = client.get(tile_url(orthophoto, place.tile))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"


def test_tiles_show_the_colours_where_they_are(login, planner, orthophoto, place):
    response = login(planner).get(tile_url(orthophoto, place.tile))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    rgba = decode(response.content)
    assert pixel(rgba, place.tile, *place.red) == (*RED, 255)
    assert pixel(rgba, place.tile, *place.blue) == (*BLUE, 255)
    assert pixel(rgba, place.tile, *place.outside)[3] == 0


def test_webp_tiles_too(login, planner, orthophoto, place):
    response = login(planner).get(tile_url(orthophoto, place.tile, "webp"))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    rgba = decode(response.content, driver="WEBP")
    # Lossy WebP: near the colours, not exactly them.
    red = pixel(rgba, place.tile, *place.red)
    blue = pixel(rgba, place.tile, *place.blue)
    assert red[0] > 200 and red[2] < 60 and red[3] > 200
    assert blue[2] > 200 and blue[0] < 60 and blue[3] > 200


def test_a_tile_outside_the_image_is_204(login, planner, orthophoto, place):
    far = type(place.tile)(place.tile.x + 3, place.tile.y, place.tile.z)

    response = login(planner).get(tile_url(orthophoto, far))

    assert response.status_code == 204
    assert response.content == b""
    assert "max-age" in response["Cache-Control"]


def test_a_tile_off_the_grid_or_of_no_orthophoto_is_404(
    login, planner, orthophoto, place
):
    client = login(planner)

    off_grid = client.get(f"/imagery/{orthophoto.pk}/tiles/3/8/0.png")
    unknown = client.get(tile_url(type(orthophoto)(pk=orthophoto.pk + 99), place.tile))

    assert off_grid.status_code == 404
    assert off_grid.json()["error"]["en"] == (
        f"There is no tile 3/8/0 in layer imagery/{orthophoto.pk}."
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "NotFound"


def test_tiles_are_cached_privately_and_revalidated_by_etag(
    login, planner, orthophoto, place
):
    client = login(planner)
    url = tile_url(orthophoto, place.tile)

    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first["ETag"]})

    assert first["ETag"].startswith(f'"{orthophoto.sha256[:32]}')
    assert "private" in first["Cache-Control"]
    assert "max-age=86400" in first["Cache-Control"]
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    webp = client.get(tile_url(orthophoto, place.tile, "webp"))
    assert webp["ETag"] != first["ETag"]


def test_tilejson_describes_the_cog(login, planner, orthophoto, place):
    client = login(planner)

    response = client.get(f"/imagery/{orthophoto.pk}/tilejson.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document["tilejson"] == "3.0.0"
    assert document["scheme"] == "xyz"
    assert document["name"] == "科学城 2026-11"
    assert document["tiles"] == [
        f"http://testserver/imagery/{orthophoto.pk}/tiles/{{z}}/{{x}}/{{y}}.png"
    ]
    west, south, east, north = document["bounds"]
    for lon, lat in (place.red, place.blue):
        assert west < lon < east and south < lat < north
    # 0.25 m pixels: detail down to zoom 19 or 20; the whole image in a few tiles
    # a handful of levels up.
    assert 19 <= document["maxzoom"] <= 20
    assert document["minzoom"] < ZOOM + 2 < document["maxzoom"]
    lon, lat, zoom = document["center"]
    assert west < lon < east and south < lat < north
    assert zoom == document["minzoom"]
    assert "private" in response["Cache-Control"]
    assert (
        client.get(
            response.request["PATH_INFO"], headers={"If-None-Match": response["ETag"]}
        ).status_code
        == 304
    )
    # The template works: the tile it names is the tile served above.
    path = document["tiles"][0].removeprefix("http://testserver")
    tile = path.format(z=place.tile.z, x=place.tile.x, y=place.tile.y)
    assert client.get(tile).status_code == 200


def test_tilejson_for_webp_and_a_bad_format(login, planner, orthophoto):
    client = login(planner)
    url = f"/imagery/{orthophoto.pk}/tilejson.json"

    webp = client.get(url, {"format": "webp"}).json()
    bad = client.get(url, {"format": "gif"})

    assert webp["tiles"][0].endswith("/{z}/{x}/{y}.webp")
    assert bad.status_code == 400
    assert bad.json()["error"]["en"] == (
        "format: unknown value gif; known values: png, webp."
    )


def test_a_project_list_shows_only_that_project(
    login, registry_admin, orthophoto, other_project
):
    client = login(registry_admin)

    here = client.get(f"/imagery/projects/{orthophoto.project_id}/")
    there = client.get(f"/imagery/projects/{other_project.pk}/")
    nowhere = client.get("/imagery/projects/999999/")

    assert "科学城 2026-11" in here.content.decode()
    assert f"{UPLOAD}?project={orthophoto.project_id}" in here.content.decode()
    assert "科学城 2026-11" not in there.content.decode()
    assert nowhere.status_code == 404


def test_registry_admins_see_orthophotos_in_the_admin_and_delete_them(
    login, registry_admin, orthophoto, django_capture_on_commit_callbacks
):
    client = login(registry_admin)
    cog = imagery.cog_path(orthophoto)
    base = f"/admin/tilesvc/orthophoto/{orthophoto.pk}"

    listing = client.get("/admin/tilesvc/orthophoto/")
    detail = client.get(f"{base}/change/")
    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.post(f"{base}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert "科学城 2026-11" in listing.content.decode()
    assert detail.status_code == 200
    assert orthophoto.sha256 in detail.content.decode()
    assert deleted.status_code == 302
    assert Orthophoto.objects.count() == 0
    assert not cog.exists()


def test_orthophotos_cannot_be_added_in_the_admin(login, registry_admin):
    assert (
        login(registry_admin).get("/admin/tilesvc/orthophoto/add/").status_code == 403
    )
