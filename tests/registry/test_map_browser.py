"""The planners' map in a real headless Chromium, with no base map and no internet.

The colours are checked on the screenshot itself: each parcel's centroid is
carried to a pixel of the map with Leaflet's own projection
(``window.registryMap.map``), and the pixel there must be the legend's colour of
that parcel, as the canvas blends it over the map's ground. Screenshots stay in
``var/test-artifacts/``.
"""

import json
import re
import warnings

import pytest
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.utils import timezone
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from registry import selectors
from registry.choices import LandClass, Role
from registry.models import ExportLog, ParcelStatusChange
from registry.workflow import CLEARED_STATUSES, Status
from spatial.crs import STORAGE_SRID, WGS84_SRID
from tests.browser import ARTIFACTS, log_in, outside_the_browser
from tests.factories import (
    PARCEL_MARGIN,
    PARCEL_PITCH,
    PASSWORD,
    BuildingFactory,
    ParcelFactory,
    ProjectFactory,
    project_boundary,
    user_with_role,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIDE = 80.0
# Sixteen parcels on two rows of the factory grid, of every stage and class.
STATUSES = [
    Status.CLEARED,
    Status.SURVEYED,
    Status.BANKED,
    Status.SIGNED,
    Status.DECLARED,
    Status.CLEARED,
    Status.VERIFIED,
    Status.BANKED,
]
CLASSES = list(LandClass)


def parcel_facts(parcel) -> dict:
    centroid = parcel.geom.centroid.transform(WGS84_SRID, clone=True)
    return {
        "id": parcel.pk,
        "code": parcel.code,
        "status": parcel.status,
        "land_class": parcel.land_class,
        "cleared": parcel.status in CLEARED_STATUSES,
        "lonlat": (centroid.x, centroid.y),
    }


@pytest.fixture
def land():
    """A planner, an analyst, and a project of sixteen 80 m parcels."""
    user_with_role(Role.PLANNER, username="map-planner")
    analyst = user_with_role(Role.ANALYST, username="map-analyst")
    # Fixed places, whatever the factories' counters say after other tests: the
    # pixels checked must not lie under the district's outline (drawn dashed).
    project = ProjectFactory(
        code="GM-MAP", name_zh="地图测试项目", boundary=project_boundary(0)
    )
    ProjectFactory(code="GM-NEXT", name_zh="相邻项目", boundary=project_boundary(1))
    parcels = []
    for n in range(16):
        position = n if n < 8 else n + 2  # row 0: 0-7, row 1: 10-17
        parcels.append(
            ParcelFactory(
                project=project,
                code=f"GM-MAP-{n:02d}",
                position=position,
                side=SIDE,
                status=STATUSES[n % len(STATUSES)],
                land_class=CLASSES[n % len(CLASSES)],
            )
        )
    for n in range(2):  # footprints away from the parcel's centre
        BuildingFactory(parcel=parcels[0], code=f"B-MAP-{n}", position=n)
    # Factories write no history; exports read each parcel's status from it.
    ParcelStatusChange.objects.bulk_create(
        ParcelStatusChange(
            parcel=p, move="create", from_status="", to_status=p.status,
            actor=analyst, at=timezone.now(), banked_on=p.banked_on,
            bank_ref=p.bank_ref,
        )
        for p in parcels
    )  # fmt: skip
    return {
        "project": project,
        "parcels": [parcel_facts(p) for p in parcels],
        "figures": selectors.project_area_summary()[project.pk],
    }


def parcels_hit(code: str, geojson: str) -> dict[str, float]:
    """Return the parcels of project ``code`` the GeoJSON geometry intersects."""
    shape = GEOSGeometry(geojson, srid=WGS84_SRID)
    parcels = selectors.parcel_list(project=code, intersecting=shape)
    return {parcel.code: parcel.area_m2 for parcel in parcels}


def open_map(page, live_server, code: str, username: str = "map-planner") -> None:
    log_in(page, live_server, username, PASSWORD)
    page.goto(f"{live_server.url}/projects/{code}/map")
    page.wait_for_selector("body[data-parcels-drawn=yes]", timeout=20_000)


def pixels_of(png: bytes):
    """Return the screenshot as an array of rows of (r, g, b[, a]) pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as memory, memory.open() as image:
            return image.read().transpose(1, 2, 0)


def container_points(page, lonlats) -> list[tuple[float, float]]:
    return page.evaluate(
        """(lonlats) => lonlats.map(([lon, lat]) => {
            const point = window.registryMap.map.latLngToContainerPoint([lat, lon]);
            return [point.x, point.y];
        })""",
        [list(lonlat) for lonlat in lonlats],
    )


def rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def legend_colours(page, mode: str) -> dict[str, tuple[int, int, int]]:
    """Return the legend's colours for ``mode`` as the page shows them."""
    shown = page.evaluate(
        """(mode) => Array.from(
            document.querySelectorAll(`ul[data-legend=${mode}] li`),
            (li) => [li.dataset.value,
                     getComputedStyle(li.querySelector(".swatch")).backgroundColor])""",
        mode,
    )
    return {value: rgb(css) for value, css in shown}


def drawn(colour, ground, opacity) -> tuple[float, ...]:
    """Return the colour of a fill of ``colour`` at ``opacity`` over ``ground``."""
    return tuple(
        opacity * c + (1 - opacity) * g for c, g in zip(colour, ground, strict=True)
    )


def assert_parcels_drawn_in(page, land, png, mode, key):
    """Check each parcel's centroid pixel has its legend colour (and no other's)."""
    legend = legend_colours(page, mode)
    style = page.evaluate("() => window.registryMap.config.style")
    ground = hex_rgb(page.evaluate("() => window.registryMap.config.ground"))
    expected = {
        value: drawn(colour, ground, style["fillOpacity"])
        for value, colour in legend.items()
    }
    image = pixels_of(png)
    points = container_points(page, [p["lonlat"] for p in land["parcels"]])
    for parcel, (x, y) in zip(land["parcels"], points, strict=True):
        assert 0 <= x < image.shape[1] and 0 <= y < image.shape[0], parcel["code"]
        pixel = tuple(int(v) for v in image[round(y), round(x)][:3])
        value = key(parcel)

        def distance(colour, pixel=pixel):
            return max(abs(a - b) for a, b in zip(colour, pixel, strict=True))

        nearest = min(expected, key=lambda v: distance(expected[v]))
        assert (nearest, distance(expected[value]) <= 6) == (value, True), (
            parcel["code"],
            pixel,
            expected[value],
        )


def test_the_project_map_colours_cleared_and_uncleared_parcels_where_they_lie(
    land, browser_page, live_server
):
    page, requested = browser_page
    code = land["project"].code
    open_map(page, live_server, code)
    png = page.locator("#map").screenshot(path=ARTIFACTS / "map-project-cleared.png")

    # The legend gives the two colours the issue asks for, in Chinese.
    legend = legend_colours(page, "cleared")
    assert legend == {"cleared": (46, 125, 50), "uncleared": (230, 81, 0)}
    labels = page.locator("ul[data-legend=cleared] li").all_inner_texts()
    assert [label.strip() for label in labels] == ["已清理", "未清理"]
    assert_parcels_drawn_in(
        page,
        land,
        png,
        "cleared",
        lambda p: "cleared" if p["cleared"] else "uncleared",
    )
    cleared = {p["cleared"] for p in land["parcels"]}
    assert cleared == {True, False}

    # The totals panel shows the selectors' figures (those of /api/projects/).
    figures = land["figures"]
    for key in [*LandClass.values, "all"]:
        summary = figures[None if key == "all" else key]
        row = page.locator(f"#totals tr[data-land-class={key}]")
        assert row.locator("[data-figure=parcels]").inner_text() == str(summary.parcels)
        for name in ("cleared", "uncleared", "banked"):
            cell = row.locator(f"[data-figure={name}]")
            assert cell.inner_text() == f"{getattr(summary, f'{name}_m2'):,.0f}"

    # Coloured by status instead: the legend and the parcels change together.
    page.check("input[name=colour-by][value=status]")
    page.wait_for_selector("body[data-parcels-drawn=yes]", timeout=20_000)
    assert page.locator("ul[data-legend=status]").is_visible()
    assert not page.locator("ul[data-legend=cleared]").is_visible()
    png = page.locator("#map").screenshot(path=ARTIFACTS / "map-project-status.png")
    assert_parcels_drawn_in(page, land, png, "status", lambda p: p["status"])

    # Everything came from this server: the vendored Leaflet, tiles, no base map.
    assert any(url.endswith("/static/vendor/leaflet/leaflet.js") for url in requested)
    assert any("/tiles/parcels/" in url for url in requested)
    outside = [
        url
        for url in requested
        if not url.startswith((live_server.url, "data:", "blob:"))
    ]
    assert outside == []


def test_a_drawn_rectangle_lists_the_parcels_it_touches_and_exports_them(
    land, browser_page, live_server
):
    page, _requested = browser_page
    project = land["project"]
    # An analyst: the one who may export what the selection lists.
    open_map(page, live_server, project.code, "map-analyst")
    # From inside parcel 0 (row 0) to inside parcel 12 (row 1, third column).
    x0, y0, _x1, _y1 = project.boundary.extent
    inside = PARCEL_MARGIN + 20
    corners = GEOSGeometry(
        f"MULTIPOINT ({x0 + inside} {y0 + inside}, "
        f"{x0 + inside + 2 * PARCEL_PITCH} {y0 + inside + PARCEL_PITCH})",
        srid=STORAGE_SRID,
    ).transform(WGS84_SRID, clone=True)
    (ax, ay), (bx, by) = container_points(page, [p.coords for p in corners])
    box = page.locator("#map").bounding_box()

    page.click(".leaflet-draw-draw-rectangle")
    page.mouse.move(box["x"] + ax, box["y"] + ay)
    page.mouse.down()
    page.mouse.move(box["x"] + (ax + bx) / 2, box["y"] + (ay + by) / 2, steps=4)
    page.mouse.move(box["x"] + bx, box["y"] + by, steps=4)
    page.mouse.up()
    page.wait_for_selector("#query-summary[data-count]", timeout=10_000)
    page.locator("#map").screenshot(path=ARTIFACTS / "map-project-rectangle.png")

    listed = page.locator("#query-list tbody tr").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.parcel)"
    )
    drawn_geometry = page.evaluate(
        "() => JSON.stringify(window.registryMap.state.result.geometry)"
    )

    expected = outside_the_browser(lambda: parcels_hit(project.code, drawn_geometry))
    # The parcels of the first three columns of both rows, and no others.
    assert sorted(expected) == [
        "GM-MAP-00",
        "GM-MAP-01",
        "GM-MAP-02",
        "GM-MAP-08",
        "GM-MAP-09",
        "GM-MAP-10",
    ]
    assert sorted(listed) == sorted(expected)
    assert json.loads(drawn_geometry)["type"] == "Polygon"
    total = sum(expected.values())
    summary = page.locator("#query-summary")
    assert f"{total:,.0f}" in summary.inner_text()
    assert float(summary.get_attribute("data-area-m2")) == pytest.approx(total, abs=0.1)

    with page.expect_download() as download:
        page.click("#query-download")
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert download.value.suggested_filename == "parcels.geojson"
    assert exported["type"] == "FeatureCollection"
    assert exported["manifest"]["features"] == len(expected)
    logged = outside_the_browser(
        lambda: list(ExportLog.objects.values_list("user__username", "features"))
    )
    assert logged == [("map-analyst", len(expected))]
    assert sorted(f["properties"]["code"] for f in exported["features"]) == sorted(
        expected
    )
    square = Polygon(*exported["features"][0]["geometry"]["coordinates"][0])
    assert square.num_points == 5

    # A polygon, corner by corner, closed on its first corner: a triangle from
    # parcel 3 to 5 (the edge crosses 4) to 13, the one above 5.
    parcels = land["parcels"]
    corners = container_points(page, [parcels[n]["lonlat"] for n in (3, 5, 13)])
    page.click(".leaflet-draw-draw-polygon")
    for x, y in [*corners, corners[0]]:
        page.mouse.click(box["x"] + x, box["y"] + y)
        # leaflet-draw ignores a click within 50 ms of the last one.
        page.wait_for_timeout(150)
    page.wait_for_function(
        "() => window.registryMap.state.result?.geometry.coordinates[0].length === 4"
    )
    page.locator("#map").screenshot(path=ARTIFACTS / "map-project-polygon.png")
    listed = page.locator("#query-list tbody tr").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.parcel)"
    )
    drawn_geometry = page.evaluate(
        "() => JSON.stringify(window.registryMap.state.result.geometry)"
    )
    expected = outside_the_browser(lambda: parcels_hit(project.code, drawn_geometry))
    assert sorted(expected) == ["GM-MAP-03", "GM-MAP-04", "GM-MAP-05", "GM-MAP-13"]
    assert sorted(listed) == sorted(expected)


def test_a_click_on_a_parcel_shows_its_facts_buildings_and_history_link(
    land, browser_page, live_server
):
    page, _requested = browser_page
    open_map(page, live_server, land["project"].code)
    parcel = land["parcels"][0]
    ((x, y),) = container_points(page, [parcel["lonlat"]])

    page.locator("#map").click(position={"x": x, "y": y})
    popup = page.locator(f".parcel-popup[data-parcel='{parcel['code']}']")
    popup.locator("ul.buildings").wait_for(timeout=10_000)

    text = popup.inner_text()
    assert parcel["code"] in text
    assert "原农村集体土地" in text and "腾空清理" in text
    assert f"{SIDE * SIDE:,.0f}" in text
    assert popup.locator("ul.buildings li").all_inner_texts() == [
        "B-MAP-0 · 3 层 · 未签约",
        "B-MAP-1 · 3 层 · 未签约",
    ]
    history = popup.locator("a").get_attribute("href")
    assert history == f"/api/parcels/{parcel['id']}/"
    assert page.locator("#query-list tbody tr").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.parcel)"
    ) == [parcel["code"]]
    page.screenshot(path=ARTIFACTS / "map-project-popup.png")


def test_the_district_map_labels_projects_and_opens_one(
    land, browser_page, live_server
):
    page, requested = browser_page
    log_in(page, live_server, "map-planner", PASSWORD)
    page.goto(f"{live_server.url}/map/")
    page.wait_for_selector("body[data-map-ready=yes]")
    page.screenshot(path=ARTIFACTS / "map-district.png")

    share = land["figures"][None].cleared_share
    labels = page.locator(".project-label").all_inner_texts()
    assert sorted(labels) == ["GM-MAP " + f"{share * 100:.1f}%", "GM-NEXT 0.0%"]
    # Labels let clicks through to the project's outline, as people expect.
    label = page.locator(".project-label", has_text="GM-MAP").bounding_box()
    page.mouse.click(label["x"] + label["width"] / 2, label["y"] + label["height"] / 2)
    page.wait_for_url(f"{live_server.url}/projects/GM-MAP/map")
    assert all(url.startswith((live_server.url, "data:")) for url in requested)


@pytest.fixture
def hostile_orthophoto(land, settings, tmp_path):
    """An orthophoto titled with markup, by a surveyor, made before the browser."""
    from tests.tilesvc.test_imagery import place_in, write_geotiff
    from tilesvc import imagery

    settings.IMAGERY_DIR = tmp_path / "imagery"
    project = land["project"]
    surveyor = user_with_role(Role.SURVEYOR, project, username="map-surveyor")
    place = place_in(project)
    return imagery.orthophoto_ingest(
        project=project,
        upload_path=write_geotiff(
            tmp_path / "o.tif", west=place.west, north=place.north
        ),
        title='<img src=x onerror="window.pwned = 1">航拍',
        actor=surveyor,
    )


def test_an_orthophoto_title_is_shown_as_text_never_run(
    hostile_orthophoto, land, browser_page, live_server
):
    page, _requested = browser_page
    open_map(page, live_server, land["project"].code)

    control = page.locator(".leaflet-control-layers-overlays")
    assert '<img src=x onerror="window.pwned = 1">航拍' in control.inner_text()
    assert page.evaluate("() => window.pwned") is None
    # Switched on, the photo is drawn from this server's own tiles.
    control.locator("input").check()
    page.wait_for_selector("img.leaflet-tile-loaded[src*='/imagery/']", timeout=10_000)
