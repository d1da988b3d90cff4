"""Hostile tile requests: malformed coordinates and SQL-like filters, bounded.

Zooms out of range, columns and rows beyond 2^z, negative and huge numbers,
non-digits, other extensions, and filter values that look like SQL: each must be
a clear bilingual 4xx (JSON, the same body as the other APIs), answered within
2 seconds under a 2-second ``statement_timeout`` (``tests.registry.hostile``).
Tile URLs that the URL conf does not match at all (a negative zoom, ``.png``) get
the same bilingual 404 from the site's ``handler404``.
"""

import pytest

from registry.models import Parcel
from registry.workflow import Status
from tests.factories import ParcelFactory
from tests.registry.hostile import ask, refused, statement_timeout
from tests.tilesvc.conftest import tile_of

SQL_LIKE = ["' OR 1=1 --", ";DROP TABLE registry_parcel;--"]


@pytest.fixture
def parcel(project):
    return ParcelFactory(code="SC-1", project=project, status=Status.CLEARED)


@pytest.fixture
def client(login, planner, parcel):
    with statement_timeout():
        yield login(planner)


def no_tile(z, x, y, layer="parcels") -> str:
    return f"There is no tile {z}/{x}/{y} in layer {layer}."


@pytest.mark.parametrize(
    ("z", "x", "y"),
    [
        (19, 0, 0),  # beyond the layer's maxzoom 18
        (99, 0, 0),
        (10**30, 0, 0),
        (16, 2**16, 0),  # one column past the last
        (16, 0, 2**16),
        (3, 8, 8),
        (18, 10**20, 10**20),
        (0, 1, 0),
    ],
)
def test_a_tile_outside_the_grid_is_not_found(client, z, x, y):
    response = ask(client, "get", f"/tiles/parcels/{z}/{x}/{y}.mvt")

    refused(response, parameter=None, status=404, en=no_tile(z, x, y))
    assert response.json()["code"] == "NotFound"


def test_a_zoom_below_the_layers_minzoom_is_an_empty_tile(client):
    response = ask(client, "get", "/tiles/parcels/2/1/1.mvt")

    assert response.status_code == 204


def test_the_last_tile_of_the_grid_is_served(client, parcel):
    response = ask(client, "get", f"/tiles/parcels/18/{2**18 - 1}/{2**18 - 1}.mvt")

    assert response.status_code == 204  # nothing there, but a tile all the same


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/parcels/-1/0/0.mvt",
        "/tiles/parcels/16/-5/3.mvt",
        "/tiles/parcels/16/3/-5.mvt",
        "/tiles/parcels/sixteen/1/1.mvt",
        "/tiles/parcels/16/1/1e3.mvt",
        "/tiles/parcels/16/0x1/1.mvt",
        "/tiles/parcels/16/1/1.png",
        "/tiles/parcels/16/1/1.mvt.gz",
        "/tiles/parcels/16/1/1",
        "/tiles/parcels/16/1/1/1.mvt",
        "/tiles/parcels/16/1/" + "9" * 5000 + ".mvt",
    ],
)
def test_a_malformed_tile_path_is_a_bilingual_404(client, path):
    response = ask(client, "get", path)

    assert response["Content-Type"] == "application/json"
    body = refused(
        response, parameter=None, status=404, en=f"There is nothing at {path[:200]}."
    )
    assert body["code"] == "NotFound"


@pytest.mark.parametrize("value", SQL_LIKE)
def test_a_project_filter_that_looks_like_sql_is_a_value(client, parcel, value):
    tile = tile_of(parcel.geom, 16)

    response = ask(
        client,
        "get",
        f"/tiles/parcels/16/{tile.x}/{tile.y}.mvt",
        data={"project": value},
    )

    assert response.status_code == 204  # no project of that code: nothing drawn
    assert Parcel.objects.count() == 1


@pytest.mark.parametrize("value", SQL_LIKE)
@pytest.mark.parametrize(
    ("layer", "parameter", "known"),
    [
        ("parcels", "status", "surveyed, declared, verified, signed, cleared, banked"),
        ("parcels", "land_class", "collective, state_farm, unfinished_expropriation"),
        ("buildings", "status", "unsigned, signed, vacated, demolished"),
    ],
)
def test_a_coded_filter_that_looks_like_sql_is_refused(
    client, parcel, layer, parameter, known, value
):
    tile = tile_of(parcel.geom, 16)

    response = ask(
        client,
        "get",
        f"/tiles/{layer}/16/{tile.x}/{tile.y}.mvt",
        data={parameter: value},
    )

    refused(
        response,
        parameter=parameter,
        en=f"{parameter}: unknown value {value}; known values: {known}.",
    )


@pytest.mark.parametrize("value", SQL_LIKE)
def test_a_filter_name_that_looks_like_sql_is_refused(client, parcel, value):
    tile = tile_of(parcel.geom, 16)

    response = ask(
        client, "get", f"/tiles/parcels/16/{tile.x}/{tile.y}.mvt", data={value: "1"}
    )

    refused(
        response,
        parameter=value[:40],
        en=f"{value[:40]} is not a filter of the parcels tiles.",
    )


@pytest.mark.parametrize("value", SQL_LIKE)
def test_a_layer_that_looks_like_sql_is_not_found(client, value):
    from urllib.parse import quote

    response = ask(client, "get", f"/tiles/{quote(value)}/16/1/1.mvt")

    refused(
        response,
        parameter=None,
        status=404,
        en=f"There is no tile layer {value[:40]}; the layers are parcels, "
        "buildings, projects.",
    )


def test_a_tilejson_filter_that_looks_like_sql_is_refused(client):
    refused(
        ask(client, "get", "/tiles/parcels.json", data={"status": SQL_LIKE[1]}),
        parameter="status",
        en=f"status: unknown value {SQL_LIKE[1]}; known values: surveyed, declared, "
        "verified, signed, cleared, banked.",
    )


def test_a_thousand_project_values_make_one_bounded_tile(client, parcel):
    tile = tile_of(parcel.geom, 16)
    projects = ",".join(f"P-{n}' OR '1'='1" for n in range(1000))

    response = ask(
        client,
        "get",
        f"/tiles/parcels/16/{tile.x}/{tile.y}.mvt",
        data={"project": projects},
    )

    assert response.status_code == 204
