"""The planners' map pages, as each persona and each language gets them."""

import json
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from registry.choices import LandClass
from registry.selectors import project_area_summary
from tests.factories import ParcelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def land(project, other_project):
    """Parcels of both projects: cleared, banked and not yet cleared."""
    ParcelFactory(project=project, status="cleared", side=200)
    ParcelFactory(project=project, status="banked", side=100)
    ParcelFactory(
        project=project, status="signed", side=100, land_class=LandClass.STATE_FARM
    )
    ParcelFactory(project=other_project, status="declared", side=100)


def map_config(html: str) -> dict:
    match = re.search(
        r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the page carries no map configuration"
    return json.loads(match.group(1))


def assert_served_from_here(html: str) -> None:
    """Check every script and style is a local static file and nothing is external."""
    assert not re.search(r"\bhttps?:|(?:src|href)=\"//", html), "an external URL"
    for url in re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html):
        if url.startswith("data:"):
            continue
        path = urlsplit(url).path
        assert path.startswith("/static/"), url
        assert finders.find(path.removeprefix("/static/")), f"missing {path}"


@pytest.mark.parametrize("path", ["/map/", "/projects/GM-SC/map"])
def test_an_anonymous_visitor_is_sent_to_log_in(path, project):
    response = Client().get(path)

    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/login/"


@pytest.mark.parametrize("path", ["/map/", "/projects/GM-SC/map"])
def test_a_user_without_a_role_is_refused(path, project, outsider, login):
    assert login(outsider).get(path).status_code == 403


def test_an_unknown_project_has_no_map(planner, login):
    assert login(planner).get("/projects/NOPE/map").status_code == 404


@pytest.mark.parametrize(
    "persona", ["planner", "analyst", "surveyor", "case_officer", "registry_admin"]
)
def test_every_role_sees_both_maps(persona, request, land, login):
    client = login(request.getfixturevalue(persona))

    assert client.get("/map/").status_code == 200
    assert client.get("/projects/GM-SC/map").status_code == 200


def test_the_district_map_labels_each_project_with_its_cleared_share(
    land, project, other_project, planner, login
):
    response = login(planner).get("/map/")

    html = response.content.decode()
    config = map_config(html)
    by_code = {p["code"]: p for p in config["projects"]}
    assert set(by_code) == {project.code, other_project.code}
    summary = project_area_summary()
    for each in (project, other_project):
        total = summary[each.pk][None]
        share = f"{total.cleared_share * 100:.1f}%"
        shown = by_code[each.code]
        assert shown["label"] == f"{each.code} {share}"
        assert shown["url"] == f"/projects/{each.code}/map"
        assert shown["boundary"]["type"] == "MultiPolygon"
        row = re.search(rf'<tr data-project="{each.code}">(.*?)</tr>', html, re.S)
        assert f'<td class="num share">{share}</td>' in row.group(1)
    # 200 of the 400 m² x 100 of GM-SC are cleared or banked: 50 000 of 60 000.
    assert by_code[project.code]["label"] == "GM-SC 83.3%"
    assert by_code[other_project.code]["label"] == "GM-L6 0.0%"
    assert config["basemaps"] == []
    assert config["outline"]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert_served_from_here(html)


def test_the_project_map_shows_the_figures_the_query_api_gives(
    land, project, planner, login
):
    client = login(planner)

    html = client.get(f"/projects/{project.code}/map").content.decode()
    api = client.get(f"/api/projects/{project.code}/").json()

    expected = {**api["by_land_class"], "all": api["totals"]}
    for key, figures in expected.items():
        row = re.search(rf'<tr data-land-class="{key}"[^>]*>(.*?)</tr>', html, re.S)
        assert row, key
        cells = dict(
            re.findall(r'data-figure="(\w+)"(?: data-m2="[^"]*")?>([^<]*)<', row[1])
        )
        m2 = dict(re.findall(r'data-figure="(\w+)" data-m2="([^"]*)"', row[1]))
        assert int(cells["parcels"]) == figures["parcels"]
        for name in ("cleared", "uncleared", "banked"):
            assert float(m2[name]) == figures[f"{name}_m2"], (key, name)
            assert cells[name] == f"{figures[f'{name}_m2']:,.0f}", (key, name)
    assert expected["all"]["cleared_m2"] == pytest.approx(50_000, abs=0.01)
    assert expected["state_farm"]["uncleared_m2"] == pytest.approx(10_000, abs=0.01)
    assert "83.3%" in html


def test_the_project_map_reads_its_tiles_and_queries_from_this_site(
    land, project, planner, login
):
    html = login(planner).get(f"/projects/{project.code}/map").content.decode()

    config = map_config(html)
    assert config["tiles"]["parcels"] == (
        f"/tiles/parcels/{{z}}/{{x}}/{{y}}.mvt?project={project.code}"
    )
    assert config["tiles"]["buildings"].startswith("/tiles/buildings/{z}/{x}/{y}.mvt")
    assert config["tiles"]["buildingsMinZoom"] == 15
    assert config["api"]["search"] == "/api/parcels/search/"
    assert config["api"]["parcels"] == "/api/parcels/"
    # A planner cannot use the admin: the history link goes to the API's detail.
    assert config["api"]["history"] == "/api/parcels/0/"
    assert config["csrfToken"]
    assert config["project"]["boundary"]["type"] == "MultiPolygon"
    legend = {item["value"]: item["colour"] for item in config["legends"]["cleared"]}
    assert legend == {"cleared": "#2e7d32", "uncleared": "#e65100"}
    for item in config["legends"]["cleared"]:
        swatch = f'<li data-value="{item["value"]}"><span class="swatch" '
        assert f'{swatch}style="background-color: {item["colour"]}"' in html
    assert_served_from_here(html)


def test_a_registry_admin_is_sent_to_the_admin_page_for_a_history(
    project, registry_admin, login
):
    html = login(registry_admin).get(f"/projects/{project.code}/map").content.decode()

    assert map_config(html)["api"]["history"] == "/admin/registry/parcel/0/change/"


@pytest.mark.parametrize(
    "persona, exports",
    [("planner", False), ("analyst", True), ("registry_admin", True)],
)
def test_only_analysts_and_admins_are_offered_the_export(
    persona, exports, request, project, login
):
    user = request.getfixturevalue(persona)
    html = login(user).get(f"/projects/{project.code}/map").content.decode()

    assert ('id="query-download"' in html) is exports
    assert (map_config(html)["api"]["export"] == "/api/exports/banked/") is exports


def test_the_maps_are_chinese_by_default_and_english_on_request(
    land, project, planner, login
):
    chinese = login(planner).get(f"/projects/{project.code}/map").content.decode()
    english = login(planner, language="en")
    english_html = english.get(f"/projects/{project.code}/map").content.decode()

    assert '<html lang="zh-hans">' in chinese
    assert "地块着色方式" in chinese
    assert map_config(chinese)["legends"]["cleared"][0]["label"] == "已清理"
    assert map_config(chinese)["project"]["name"] == "光明科学城启动区"
    assert '<html lang="en">' in english_html
    assert "Colour parcels by" in english_html
    assert map_config(english_html)["legends"]["cleared"][0]["label"] == "Cleared"
    district = english.get("/map/").content.decode()
    assert "<h1>District map</h1>" in district


def test_no_base_map_is_the_default(project, planner, login, settings):
    settings.MAP_BASEMAP = "none"

    html = login(planner).get(f"/projects/{project.code}/map").content.decode()

    assert map_config(html)["basemaps"] == []
    assert "tianditu" not in html and "openstreetmap" not in html.lower()


def test_an_intranet_osm_mirror_can_be_the_base_map(project, planner, login, settings):
    settings.MAP_BASEMAP = "osm"
    settings.MAP_OSM_URL = "/osm-mirror/{z}/{x}/{y}.png"

    html = login(planner).get("/map/").content.decode()

    (base,) = map_config(html)["basemaps"]
    assert base["layers"][0]["url"] == "/osm-mirror/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in base["layers"][0]["options"]["attribution"]


def test_tianditu_offers_its_map_and_imagery_with_the_key(
    project, planner, login, settings
):
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = "browser-key"

    html = login(planner).get(f"/projects/{project.code}/map").content.decode()

    bases = map_config(html)["basemaps"]
    layers = [layer["options"]["layer"] for base in bases for layer in base["layers"]]
    assert layers == ["vec", "cva", "img", "cia"]
    assert all(
        layer["options"]["tk"] == "browser-key" and "TILEMATRIXSET=w" in layer["url"]
        for base in bases
        for layer in base["layers"]
    )


@pytest.mark.parametrize(
    "basemap",
    [{"MAP_BASEMAP": "osm"}, {"MAP_BASEMAP": "tianditu"}, {"MAP_BASEMAP": "amap"}],
)
def test_a_base_map_that_is_not_configured_is_refused(
    basemap, project, planner, login, settings
):
    settings.MAP_OSM_URL = ""
    settings.TIANDITU_KEY = ""
    for name, value in basemap.items():
        setattr(settings, name, value)

    with pytest.raises(ImproperlyConfigured):
        login(planner, raise_request_exception=True).get("/map/")


def test_the_projects_orthophotos_are_offered_under_the_parcels(
    project, planner, surveyor, login, settings, tmp_path
):
    from tests.tilesvc.test_imagery import place_in, write_geotiff
    from tilesvc import imagery

    settings.IMAGERY_DIR = tmp_path / "imagery"
    place = place_in(project)
    photo = imagery.orthophoto_ingest(
        project=project,
        upload_path=write_geotiff(
            tmp_path / "ortho.tif", west=place.west, north=place.north
        ),
        title="2026 年航拍",
        actor=surveyor,
    )
    client = login(planner)

    layers = map_config(client.get(f"/projects/{project.code}/map").content.decode())[
        "imagery"
    ]

    assert [layer["title"] for layer in layers] == ["2026 年航拍"]
    url = layers[0]["url"]
    assert url == f"/imagery/{photo.pk}/tiles/{{z}}/{{x}}/{{y}}.png"
    tile = place.tile
    response = client.get(url.format(z=tile.z, x=tile.x, y=tile.y))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
