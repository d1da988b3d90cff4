"""CRSs named by reference, their axis order, and rectangles carried into storage."""

import pytest
import shapely
from pyproj import Transformer

from spatial import api_crs
from spatial.api_crs import CRS84, STORAGE

TO_STORAGE = Transformer.from_crs(4326, 4547, always_xy=True)


@pytest.mark.parametrize(
    "reference, srid, swapped",
    [
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, False),
        ("https://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, False),
        ("OGC:CRS84", 4326, False),
        ("http://www.opengis.net/def/crs/EPSG/0/4326", 4326, True),
        ("EPSG:4490", 4490, True),
        ("[EPSG:4547]", 4547, True),
        ("epsg:4547", 4547, True),
    ],
)
def test_known_references_name_their_crs_and_axis_order(reference, srid, swapped):
    crs = api_crs.lookup(reference)

    assert (crs.srid, crs.swapped) == (srid, swapped)


@pytest.mark.parametrize("reference", ["EPSG:3857", "EPSG:", "CRS84x", "", "urn:x"])
def test_other_references_are_unknown(reference):
    assert api_crs.lookup(reference) is None


def test_a_lonlat_rectangle_keeps_its_curved_edges_in_storage():
    box = api_crs.rectangle((113.90, 22.74, 113.95, 22.78), CRS84)

    # A parallel is curved in Gauss-Kruger: midway along an edge the true edge
    # lies metres from the chord between the corners; densified, within 1 mm.
    for lon, lat in ((113.925, 22.74), (113.9251, 22.78), (113.90, 22.7613)):
        on_edge = shapely.Point(TO_STORAGE.transform(lon, lat))
        assert box.exterior.distance(on_edge) < 0.001
    assert box.is_valid


def test_a_small_rectangle_needs_few_vertices():
    small = api_crs.rectangle((113.930, 22.760, 113.9345, 22.7635), CRS84)
    large = api_crs.rectangle((113.80, 22.60, 114.10, 22.90), CRS84)

    assert len(small.exterior.coords) < 40
    assert len(large.exterior.coords) > 100


def test_authority_order_reads_latitude_or_northing_first():
    lonlat = api_crs.rectangle((113.90, 22.74, 113.95, 22.78), CRS84)
    latlon = api_crs.rectangle(
        (22.74, 113.90, 22.78, 113.95), api_crs.lookup("EPSG:4326")
    )
    x0, y0, x1, y1 = lonlat.bounds
    northing_first = api_crs.rectangle((y0, x0, y1, x1), STORAGE)

    assert shapely.equals_exact(lonlat, latlon, tolerance=1e-6)
    assert northing_first.bounds == pytest.approx(lonlat.bounds)


def test_a_rectangle_outside_the_storage_crs_area_is_nothing():
    assert api_crs.rectangle((0.0, 0.0, 10.0, 10.0), CRS84) is None


def test_a_world_rectangle_is_clipped_to_where_parcels_can_be():
    box = api_crs.rectangle((-180.0, -90.0, 180.0, 90.0), CRS84)

    assert box.is_valid and box.area > 0
    assert box.contains(shapely.Point(TO_STORAGE.transform(113.93, 22.76)))


def test_a_rectangle_of_no_width_is_a_point_or_a_line():
    point = api_crs.rectangle((113.93, 22.76, 113.93, 22.76), CRS84)
    line = api_crs.rectangle((113.93, 22.76, 113.93, 22.77), CRS84)

    assert point.geom_type == "Point"
    assert line.geom_type == "LineString"
