"""GeoJSON pages written by PostGIS: RFC 7946 output and keyset cursors."""

import json

import pytest
import shapely
from django.contrib.gis.geos import MultiPolygon, Polygon

from registry import feature_pages, selectors
from registry.errors import RegistryError
from spatial.api_crs import CRS84, STORAGE
from tests.factories import ParcelFactory


def page(crs=CRS84, **kwargs):
    return feature_pages.page_of(
        selectors.parcel_list(),
        feature_sql=feature_pages.parcel_feature_sql(crs),
        source=feature_pages.PARCEL_FROM,
        **kwargs,
    )


@pytest.fixture
def holed(project):
    """A parcel stored clockwise with a counter-clockwise hole (the wrong way)."""
    x, y = 491_000.0, 2_511_000.0
    outer = ((x, y), (x, y + 50), (x + 50, y + 50), (x + 50, y), (x, y))
    hole = ((x + 10, y + 10), (x + 20, y + 10), (x + 20, y + 20), (x + 10, y + 20),
            (x + 10, y + 10))  # fmt: skip
    return ParcelFactory(
        project=project, geom=MultiPolygon(Polygon(outer, hole), srid=4547)
    )


def test_crs84_output_follows_the_right_hand_rule(holed):
    feature = json.loads(page(limit=10).features)
    outer, hole = feature["geometry"]["coordinates"][0]

    assert shapely.LinearRing(outer).is_ccw
    assert not shapely.LinearRing(hole).is_ccw


def test_coordinates_carry_seven_decimals_in_degrees_and_three_in_metres(holed):
    lonlat = json.loads(page(limit=1).features)["geometry"]["coordinates"][0][0][1]
    metres = json.loads(page(STORAGE, limit=1).features)["geometry"]["coordinates"]

    assert all(round(v, 7) == v for v in lonlat)
    northing, easting = metres[0][0][0]
    assert 2_500_000 < northing < 2_540_000 and 480_000 < easting < 520_000
    assert all(round(v, 3) == v for v in (northing, easting))


def test_the_geometry_carries_no_crs_member(holed):
    feature = json.loads(page(STORAGE, limit=1).features)

    assert "crs" not in feature["geometry"]


def test_an_empty_selection_is_an_empty_page(db):
    empty = page(limit=10)

    assert (empty.features, empty.returned, empty.next_cursor) == (b"", 0, None)
    assert json.loads(empty.collection({}))["features"] == []


def test_the_last_page_has_no_cursor(project):
    for _ in range(5):
        ParcelFactory(project=project)

    first = page(limit=3)
    last = page(limit=3, cursor=first.next_cursor)

    assert (first.returned, last.returned, last.next_cursor) == (3, 2, None)


@pytest.mark.parametrize("cursor", ["x", "WyJpZCIsbnVsbCwiMyJd", "e30", "!!!"])
def test_forged_cursors_are_refused(db, cursor):
    with pytest.raises(RegistryError, match="cursor"):
        page(limit=3, cursor=cursor)
