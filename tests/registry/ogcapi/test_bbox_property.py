"""Bounding boxes in every supported CRS select exactly the parcels they touch.

The oracle is written here, independently of the product: each stored parcel is
densified and carried into the bbox's CRS with pyproj, and intersected there
with the box by shapely. Boxes are random (hypothesis), many of them placed on
a parcel's vertex so that their edges graze parcels. Between the box shrunk by
a small epsilon and the box grown by it the answer may go either way (the
server works in storage coordinates); outside that band it must agree.
"""

import functools

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from rest_framework.authtoken.models import Token

ITEMS = "/ogcapi/collections/parcels/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class Crs:
    """A CRS as a client names it, and how its coordinates are written."""

    def __init__(self, uri: str, epsg: int, *, northing_first: bool, eps: float):
        self.uri = uri
        self.epsg = epsg
        self.northing_first = northing_first
        self.eps = eps  # 1e-7° (about 1 cm) or 1 cm
        self.geographic = epsg != 4547

    def __repr__(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    def written(self, x0: float, y0: float, x1: float, y1: float) -> str:
        """Return the bbox (given as x=east, y=north) in the CRS's axis order."""
        numbers = (y0, x0, y1, x1) if self.northing_first else (x0, y0, x1, y1)
        return ",".join(repr(float(n)) for n in numbers)


CRSS = [
    Crs(CRS84, 4326, northing_first=False, eps=1e-7),
    Crs(EPSG.format(4326), 4326, northing_first=True, eps=1e-7),
    Crs(EPSG.format(4490), 4490, northing_first=True, eps=1e-7),
    Crs(EPSG.format(4547), 4547, northing_first=True, eps=0.01),
]

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no example database left in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@functools.cache
def transformer(source: int, target: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{source}", f"EPSG:{target}", always_xy=True)


def stored(parcel) -> shapely.Geometry:
    """Return the parcel as stored, easting/northing (EPSG:4547)."""
    return shapely.from_wkb(bytes(parcel.geom.wkb))


def carried(geometry: shapely.Geometry, epsg: int) -> shapely.Geometry:
    """Return a stored geometry in ``epsg`` as (east, north), densified first."""
    if epsg == 4547:
        return geometry
    forward = transformer(4547, epsg)
    dense = shapely.segmentize(geometry, 1.0)  # 1 m pieces: straight in metres
    return shapely.transform(
        dense, lambda xy: np.column_stack(forward.transform(*xy.T))
    )


def back_to_storage(geometry: shapely.Geometry, crs: Crs) -> shapely.Geometry:
    """Return a geometry read from the API in ``crs`` as stored (EPSG:4547)."""
    if crs.northing_first:
        geometry = shapely.transform(geometry, lambda xy: xy[:, ::-1])
    if crs.epsg == 4547:
        return geometry
    inverse = transformer(crs.epsg, 4547)
    return shapely.transform(
        geometry, lambda xy: np.column_stack(inverse.transform(*xy.T))
    )


@pytest.fixture
def reader(client, planner):
    client.defaults["HTTP_AUTHORIZATION"] = (
        f"Token {Token.objects.create(user=planner).key}"
    )
    return client


class Scene:
    """The parcels of the test as the oracle sees them in one CRS."""

    def __init__(self, parcels, crs: Crs):
        self.crs = crs
        self.shapes = {p.pk: carried(stored(p), crs.epsg) for p in parcels}
        self.cores = {
            pk: shape.buffer(-crs.eps, quad_segs=1) for pk, shape in self.shapes.items()
        }
        self.bounds = shapely.GeometryCollection(list(self.shapes.values())).bounds
        self.vertices = np.unique(
            np.concatenate([shapely.get_coordinates(s) for s in self.shapes.values()]),
            axis=0,
        )

    def expected(self, x0, y0, x1, y1) -> tuple[set[int], set[int]]:
        """Return (parcels that must be returned, parcels that must not)."""
        e = self.crs.eps
        grown = shapely.box(x0 - e, y0 - e, x1 + e, y1 + e)
        if x1 - x0 > 2 * e and y1 - y0 > 2 * e:
            shrunk = shapely.box(x0 + e, y0 + e, x1 - e, y1 - e)
            must = {pk for pk, s in self.shapes.items() if shrunk.intersects(s)}
        else:
            # A box of (almost) no width or height is (about) a line or a
            # point: it must find the parcels whose inside, shrunk by eps, it
            # crosses. Its diagonal lies in it.
            diagonal = (
                shapely.LineString([(x0, y0), (x1, y1)])
                if (x0, y0) != (x1, y1)
                else shapely.Point(x0, y0)
            )
            must = {pk for pk, c in self.cores.items() if c.intersects(diagonal)}
        must_not = {pk for pk, s in self.shapes.items() if not grown.intersects(s)}
        return must, must_not


def boxes(scene: Scene):
    """Return a strategy of (x0, y0, x1, y1) boxes around the scene.

    A third of them have a corner on or within a few epsilon (or metres) of a
    parcel's vertex, so that their edges graze parcels; a third have one in a
    parcel's bounds, the others anywhere around the parcels. The box extends
    from that corner in any direction, from nothing (a point or a line) to the
    whole scene.
    """
    west, south, east, north = scene.bounds
    margin_x, margin_y = (east - west) / 4, (north - south) / 4
    unit = 1e-5 if scene.crs.geographic else 1.0  # about a metre
    vertex = st.sampled_from(range(len(scene.vertices)))
    parcel_bounds = st.sampled_from([s.bounds for s in scene.shapes.values()])
    offset = st.one_of(
        st.just(0.0),
        st.floats(-3 * scene.crs.eps, 3 * scene.crs.eps),
        st.floats(-50 * unit, 50 * unit),
    )
    size = st.one_of(
        st.just(0.0),
        st.floats(0, 5 * unit),
        st.floats(0, 300 * unit),
        st.floats(0, max(east - west, north - south) * 1.5),
    )

    @st.composite
    def box(draw):
        anchor = draw(st.sampled_from(["vertex", "parcel", "anywhere"]))
        if anchor == "vertex":
            corner = scene.vertices[draw(vertex)]
            x, y = corner[0] + draw(offset), corner[1] + draw(offset)
        elif anchor == "parcel":
            x0, y0, x1, y1 = draw(parcel_bounds)
            x = x0 + (x1 - x0) * draw(st.floats(0, 1))
            y = y0 + (y1 - y0) * draw(st.floats(0, 1))
        else:
            x = draw(st.floats(west - margin_x, east + margin_x))
            y = draw(st.floats(south - margin_y, north + margin_y))
        width, height = draw(size), draw(size)
        x0 = x - width if draw(st.booleans()) else x
        y0 = y - height if draw(st.booleans()) else y
        return x0, y0, x0 + width, y0 + height

    return box()


def returned_ids(reader, crs: Crs, bbox: tuple) -> list[int]:
    response = reader.get(
        ITEMS, {"bbox": crs.written(*bbox), "bbox-crs": crs.uri, "limit": 10000}
    )
    assert response.status_code == 200, response.content[:300]
    page = response.json()
    assert not any(link["rel"] == "next" for link in page["links"])
    return [feature["id"] for feature in page["features"]]


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_a_bbox_returns_exactly_the_parcels_it_touches(reader, registry_parcels, crs):
    scene = Scene(registry_parcels, crs)
    codes = {p.pk: p.code for p in registry_parcels}

    @HYPOTHESIS
    @given(bbox=boxes(scene))
    def check(bbox):
        ids = returned_ids(reader, crs, bbox)
        must, must_not = scene.expected(*bbox)

        assert len(ids) == len(set(ids)), "a parcel was returned twice"
        missing = sorted(codes[pk] for pk in must - set(ids))
        assert not missing, f"{crs!r} bbox {crs.written(*bbox)} missed {missing}"
        extra = sorted(codes[pk] for pk in must_not & set(ids))
        assert not extra, f"{crs!r} bbox {crs.written(*bbox)} returned {extra}"

    check()


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_a_bbox_around_everything_returns_every_parcel(reader, registry_parcels, crs):
    west, south, east, north = Scene(registry_parcels, crs).bounds
    pad = 0.01 if crs.geographic else 1000

    ids = returned_ids(reader, crs, (west - pad, south - pad, east + pad, north + pad))

    assert sorted(ids) == sorted(p.pk for p in registry_parcels)


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_a_bbox_in_the_wrong_axis_order_finds_nothing(reader, registry_parcels, crs):
    # Easting and northing (or longitude and latitude) swapped: a box elsewhere
    # (or refused, for latitudes past 90) but never these parcels.
    west, south, east, north = Scene(registry_parcels, crs).bounds
    wrong = crs.written(south, west, north, east)
    response = reader.get(ITEMS, {"bbox": wrong, "bbox-crs": crs.uri, "limit": 10000})

    if response.status_code == 200:
        assert response.json()["features"] == []
    else:
        assert response.status_code == 400


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_a_point_bbox_in_a_parcel_finds_it_but_not_from_its_hole(
    reader, registry_parcels, crs
):
    scene = Scene(registry_parcels, crs)
    holed = next(
        p
        for p in registry_parcels
        if shapely.get_num_interior_rings(shapely.get_geometry(stored(p), 0)) == 1
    )
    shape = scene.shapes[holed.pk]
    hole = shapely.Polygon(shapely.get_interior_ring(shapely.get_geometry(shape, 0), 0))
    inside = shapely.Polygon(
        shapely.get_exterior_ring(shapely.get_geometry(shape, 0))
    ).difference(hole.buffer(crs.eps * 10))
    solid = inside.representative_point()
    empty = hole.centroid

    assert holed.pk in returned_ids(reader, crs, (solid.x, solid.y) * 2)
    assert holed.pk not in returned_ids(reader, crs, (empty.x, empty.y) * 2)


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_features_in_any_crs_come_back_to_the_stored_geometry_within_a_cm(
    reader, registry_parcels, crs
):
    response = reader.get(ITEMS, {"crs": crs.uri, "limit": 10000})

    assert response.status_code == 200
    assert response["Content-Crs"] == f"<{crs.uri}>"
    features = {f["id"]: f for f in response.json()["features"]}
    assert sorted(features) == sorted(p.pk for p in registry_parcels)
    for parcel in registry_parcels:
        geometry = shapely.geometry.shape(features[parcel.pk]["geometry"])
        first = shapely.get_coordinates(geometry)[0]
        if crs.epsg == 4547:
            # northing, easting: Guangming is near 2 510 000 N, 490 000 E
            assert 2.4e6 < first[0] < 2.6e6 and 4.0e5 < first[1] < 6.0e5
        elif crs.northing_first:
            assert 22 < first[0] < 23.2 and 113.5 < first[1] < 114.3
        else:
            assert 113.5 < first[0] < 114.3 and 22 < first[1] < 23.2
        returned = back_to_storage(geometry, crs)
        distance = shapely.hausdorff_distance(returned, stored(parcel))
        assert distance < 0.01, f"{parcel.code} in {crs!r} is {distance:.4f} m off"
        # Rounding to 1 mm (or 1e-7°) may move each edge by a few millimetres.
        edges = stored(parcel).length
        assert returned.area == pytest.approx(parcel.area_m2, abs=0.005 * edges)


@pytest.mark.parametrize("crs", CRSS, ids=repr)
def test_one_feature_in_any_crs_comes_back_to_the_stored_geometry(
    reader, registry_parcels, crs
):
    for parcel in registry_parcels[:5]:
        response = reader.get(f"{ITEMS}/{parcel.pk}", {"crs": crs.uri})

        assert response.status_code == 200
        assert response["Content-Crs"] == f"<{crs.uri}>"
        feature = response.json()
        assert feature["id"] == parcel.pk
        geometry = back_to_storage(shapely.geometry.shape(feature["geometry"]), crs)
        assert shapely.hausdorff_distance(geometry, stored(parcel)) < 0.01


def test_the_short_and_long_names_of_a_crs_select_alike(reader, registry_parcels):
    scene = Scene(registry_parcels, CRSS[1])
    x, y = scene.vertices[len(scene.vertices) // 2]
    bbox = CRSS[1].written(x - 0.001, y - 0.001, x + 0.001, y + 0.001)
    answers = set()
    for name in (EPSG.format(4326), "EPSG:4326", "[EPSG:4326]", "epsg:4326"):
        response = reader.get(ITEMS, {"bbox": bbox, "bbox-crs": name})
        assert response.status_code == 200, name
        answers.add(tuple(f["id"] for f in response.json()["features"]))

    assert len(answers) == 1 and answers.pop()


def test_crs84_is_the_default_of_bbox_and_output(reader, registry_parcels):
    west, south, east, north = Scene(registry_parcels, CRSS[0]).bounds
    bbox = CRSS[0].written(west, south, (west + east) / 2, (south + north) / 2)

    default = reader.get(ITEMS, {"bbox": bbox})
    named = reader.get(ITEMS, {"bbox": bbox, "bbox-crs": CRS84, "crs": CRS84})

    assert default["Content-Crs"] == f"<{CRS84}>"
    features = default.json()["features"]
    assert features and features == named.json()["features"]
    assert len(features) < len(registry_parcels)
