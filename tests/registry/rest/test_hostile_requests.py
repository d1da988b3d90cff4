"""Hostile requests to the REST API: each a clear bilingual 4xx, in bounded work.

Filter values that look like SQL, page sizes no server should honour, bboxes of
NaN and infinity, drawn geometries too long, too large or nested past reason,
cursors tampered with and JSON nested deeper than Python recurses. Every
request runs under a 2-second ``statement_timeout`` and must answer within 2
seconds without showing SQL or Python errors (``tests.registry.hostile``).
"""

import base64
import json
from urllib.parse import unquote, urlencode

import pytest

from registry.models import Parcel
from tests.factories import ParcelFactory
from tests.registry.hostile import ask, refused, statement_timeout

SQL_LIKE = ["' OR 1=1 --", ";DROP TABLE registry_parcel;--"]


@pytest.fixture
def land(project):
    return [ParcelFactory(code=f"SC-{n:02d}", project=project) for n in range(5)]


@pytest.fixture
def client(login, planner, land):
    """A planner's client whose statements are cut off after 2 seconds."""
    with statement_timeout():
        yield login(planner)


def get(client, path: str, **query):
    return ask(client, "get", f"{path}?{urlencode(query)}")


def search(client, body):
    return ask(
        client,
        "post",
        "/api/parcels/search/",
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
    )


# --------------------------------------------------------------------------
# Filters that look like SQL
# --------------------------------------------------------------------------

CRS_URIS = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84, "
    "http://www.opengis.net/def/crs/EPSG/0/4326, "
    "http://www.opengis.net/def/crs/EPSG/0/4490, "
    "http://www.opengis.net/def/crs/EPSG/0/4547"
)
#: Parameter → the English refusal of a value ``v`` (None: free text, no match).
PARCEL_FILTERS = {
    "project": None,
    "code": None,
    "code_prefix": None,
    "land_class": "land_class: unknown value {v}; known values: collective, "
    "state_farm, unfinished_expropriation.",
    "status": "status: unknown value {v}; known values: surveyed, declared, "
    "verified, signed, cleared, banked.",
    "street": "street: unknown value {v}; known values: guangming, gongming, "
    "xinhu, fenghuang, yutang, matian.",
    "cleared": "cleared must be true or false, not {v}.",
    "updated_since": "updated_since is not an RFC 3339 date-time or interval: {v}",
    "bbox": "bbox must be 4/6 comma-separated numbers, not {v}.",
    "bbox-crs": "bbox-crs: unknown or unsupported CRS {v}; use one of "
    + CRS_URIS
    + ".",
    "point": "point must be 2 comma-separated numbers, not {v}.",
    "crs": "crs: unknown or unsupported CRS {v}; use one of " + CRS_URIS + ".",
    "ordering": "ordering must be one of code, -code, area_m2, -area_m2, "
    "updated_at, -updated_at, not {v}.",
    "limit": "limit must be a whole number from 1 to 1000, not {v}.",
    "cursor": "The cursor {v} is not one this server wrote for the ordering code; "
    "follow the next link as given.",
}


@pytest.mark.parametrize("value", SQL_LIKE)
@pytest.mark.parametrize("parameter", PARCEL_FILTERS)
def test_a_filter_that_looks_like_sql_is_a_value_never_sql(client, parameter, value):
    response = get(client, "/api/parcels/", **{parameter: value})

    expected = PARCEL_FILTERS[parameter]
    if expected is None:
        assert response.status_code == 200
        assert json.loads(response.content)["features"] == []
    else:
        # Each message quotes at most so many characters of the value.
        cut = 20 if parameter in ("cleared", "limit") else 40
        body = refused(response, parameter=parameter, en=expected.format(v=value[:cut]))
        assert body["code"] in ("InvalidParameterValue", "BadCursor")
    assert Parcel.objects.count() == 5


@pytest.mark.parametrize("value", SQL_LIKE)
@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("project", None),
        ("parcel", None),
        ("code", None),
        ("code_prefix", None),
        ("status", "status: unknown value {v}; known values: unsigned, signed, "
         "vacated, demolished."),
        ("legality", "legality: unknown value {v}; known values: permitted, "
         "historical_legacy, unpermitted_0962, unknown."),
    ],
)  # fmt: skip
def test_a_building_filter_that_looks_like_sql_is_a_value(
    client, parameter, expected, value
):
    response = get(client, "/api/buildings/", **{parameter: value})

    if expected is None:
        assert json.loads(response.content)["features"] == []
    else:
        refused(response, parameter=parameter, en=expected.format(v=value))


def test_sql_in_a_search_body_is_a_value_too(client):
    square = {
        "type": "Polygon",
        "coordinates": [[[113.9, 22.7], [114.0, 22.7], [114.0, 22.8], [113.9, 22.7]]],
    }

    found = search(client, {"intersects": square, "project": SQL_LIKE[0]})
    bad = search(client, {"intersects": square, "status": SQL_LIKE[1]})

    assert json.loads(found.content)["features"] == []
    refused(
        bad,
        parameter="status",
        en=PARCEL_FILTERS["status"].format(v=SQL_LIKE[1]),
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/parcels/1%20OR%201=1/",
        "/api/parcels/-1/",
        "/api/parcels/1;DROP%20TABLE%20registry_parcel/",
        "/api/parcels/" + "9" * 5000 + "/",
        "/api/nothing-here/",
    ],
)
def test_an_api_path_that_matches_nothing_is_a_bilingual_404(client, path):
    response = ask(client, "get", path)

    assert response["Content-Type"] == "application/json"
    refused(
        response,
        parameter=None,
        status=404,
        en=f"There is nothing at {unquote(path)[:200]}.",
    )


def test_a_parcel_id_beyond_bigint_is_not_found(client):
    response = ask(client, "get", "/api/parcels/99999999999999999999/")

    refused(
        response,
        parameter=None,
        status=404,
        en="There is no parcel 99999999999999999999.",
    )


# --------------------------------------------------------------------------
# Page sizes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit", ["1000000000000", "-1", "0", "1001", "1e3", "NaN", "inf", "2.5", "٣"]
)
def test_a_page_size_out_of_range_is_refused(client, limit):
    refused(
        get(client, "/api/parcels/", limit=limit),
        parameter="limit",
        en=f"limit must be a whole number from 1 to 1000, not {limit}.",
    )


def test_a_page_size_of_a_million_digits_is_refused_quickly(client):
    refused(
        get(client, "/api/parcels/", limit="9" * 100_000),
        parameter="limit",
        en=f"limit must be a whole number from 1 to 1000, not {'9' * 20}.",
    )


def test_the_largest_page_is_served(client):
    body = json.loads(get(client, "/api/parcels/", limit="1000").content)
    assert body["numberReturned"] == 5


# --------------------------------------------------------------------------
# Boxes and points
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bbox",
    [
        "nan,22,114,23",
        "113,22,inf,23",
        "-inf,-inf,inf,inf",
        "113,22,1e400,23",
        "113,22,114",
        "113,22,114,23,1,2,3",
        "0x71,22,114,23",
        "",
    ],
)
def test_a_bbox_that_is_not_four_finite_numbers_is_refused(client, bbox):
    refused(
        get(client, "/api/parcels/", bbox=bbox),
        parameter="bbox",
        en=f"bbox must be 4/6 comma-separated numbers, not {bbox}.",
    )


def test_a_bbox_of_huge_degrees_is_refused_as_latitudes(client):
    refused(
        get(client, "/api/parcels/", bbox="-1e308,-1e308,1e308,1e308"),
        parameter="bbox",
        en="bbox: latitudes must lie between -90 and 90; is the axis order right "
        "for http://www.opengis.net/def/crs/OGC/1.3/CRS84?",
    )


def test_a_bbox_of_huge_metres_is_a_query_bounded_by_the_page(client):
    response = get(
        client,
        "/api/parcels/",
        bbox="-1e308,-1e308,1e308,1e308",
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4547"},
        limit="2",
    )

    assert json.loads(response.content)["numberReturned"] == 2


def test_a_point_of_nan_is_refused(client):
    refused(
        get(client, "/api/parcels/", point="nan,nan"),
        parameter="point",
        en="point must be 2 comma-separated numbers, not nan,nan.",
    )


# --------------------------------------------------------------------------
# Drawn geometries
# --------------------------------------------------------------------------


def ring(count: int, *, lon=113.93, lat=22.75, radius=0.001) -> list:
    """Return a closed ring of ``count`` distinct vertices around a point."""
    import math

    points = [
        [
            lon + radius * math.cos(2 * math.pi * n / count),
            lat + radius * math.sin(2 * math.pi * n / count),
        ]
        for n in range(count)
    ]
    return [*points, points[0]]


def test_a_drawing_of_more_than_10000_vertices_is_refused(client):
    polygon = {"type": "Polygon", "coordinates": [ring(10_000)]}

    refused(
        search(client, {"intersects": polygon}),
        parameter="intersects",
        en="intersects has 10001 vertices; at most 10000 are accepted.",
    )


def test_a_drawing_of_a_million_vertices_is_refused_by_its_size(client):
    line = {"type": "LineString", "coordinates": [[113.9, 22.7]] * 1_000_000}

    refused(
        search(client, {"intersects": line}),
        parameter="body",
        en="The request body is larger than 2,621,440 bytes.",
    )


def test_a_drawing_larger_than_the_district_twice_is_refused(client):
    box = [[113.0, 22.0], [115.0, 22.0], [115.0, 23.5], [113.0, 23.5], [113.0, 22.0]]

    response = search(client, {"intersects": {"type": "Polygon", "coordinates": [box]}})

    assert response.status_code == 400
    english = response.json()["error"]["en"]
    assert english.startswith("intersects covers ")
    assert english.endswith(" km²; at most 300 km² are accepted.")
    assert 30_000 < float(english.split()[2].replace(",", "")) < 40_000
    refused(response, parameter="intersects", en=english)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_a_body_with_numbers_json_does_not_have_is_refused(client, bad):
    text = json.dumps(
        {"intersects": {"type": "Point", "coordinates": ["@", 22.75]}}
    ).replace('"@"', bad)

    refused(
        search(client, text),
        parameter="body",
        en="The request body is not JSON: Out of range float values are not JSON "
        f"compliant: '{bad}'",
    )


def test_a_drawing_with_an_infinite_coordinate_is_refused(client):
    text = '{"intersects": {"type": "Point", "coordinates": [1e400, 22.75]}}'

    refused(
        search(client, text),
        parameter="intersects",
        en="intersects has coordinates that are not numbers.",
    )


def nested(depth: int) -> dict:
    geometry = {"type": "Point", "coordinates": [113.93, 22.75]}
    for _ in range(depth):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    return geometry


def test_a_drawing_nested_in_collections_is_refused(client):
    refused(
        search(client, {"intersects": nested(3)}),
        parameter="intersects",
        en="intersects nests geometry collections 3 deep; at most 1 is accepted.",
    )


def test_a_drawing_nested_300_deep_is_refused_without_recursing(client):
    # json.dumps would recurse too: the text is written out.
    point = '{"type":"Point","coordinates":[113.93,22.75]}'
    deep = '{"type":"GeometryCollection","geometries":[' * 300 + point + "]}" * 300

    refused(
        search(client, '{"intersects":' + deep + "}"),
        parameter="intersects",
        en="intersects nests geometry collections 300 deep; at most 1 is accepted.",
    )


def test_a_body_nested_deeper_than_python_recurses_is_refused(client):
    response = search(client, '{"intersects":' + "[" * 100_000 + "]" * 100_000 + "}")

    refused(
        response,
        parameter="body",
        en="The request body nests arrays or objects too deeply to read.",
    )


def test_a_drawing_that_is_not_geojson_is_refused(client):
    response = search(client, {"intersects": {"type": "Polygon", "coordinates": "x"}})

    assert response.json()["error"]["en"].startswith(
        "intersects is not a GeoJSON geometry: "
    )
    refused(response, parameter="intersects", en=response.json()["error"]["en"])


# --------------------------------------------------------------------------
# Cursors
# --------------------------------------------------------------------------


def forged(*payload) -> str:
    text = json.dumps(list(payload)) if payload else "not json"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


TAMPERED = {
    "not base64": "%%%",
    "not json": forged(),
    "another ordering": forged("-code", "SC-01", 1),
    "id beyond bigint": forged("code", "SC-01", 2**63),
    "negative id": forged("code", "SC-01", -1),
    "id as text": forged("code", "SC-01", "1; DROP TABLE registry_parcel"),
    "code as a number": forged("code", 5, 1),
    "sql as the code": forged("code", "' OR 1=1 --", 1),
    "two values": forged("code", "SC-01"),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_cursor_is_refused(client, case):
    cursor = TAMPERED[case]
    response = get(client, "/api/parcels/", cursor=cursor)

    if case == "sql as the code":
        # A well-formed cursor after a code nobody has: a value, never SQL
        # (every code sorts after the quote).
        assert json.loads(response.content)["numberReturned"] == 5
        assert Parcel.objects.count() == 5
        return
    assert response.status_code == 400
    assert response.json()["error"]["en"] == (
        f"The cursor {cursor[:40]} is not one this server wrote for the ordering "
        "code; follow the next link as given."
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_a_cursor_with_an_area_that_is_not_a_number_is_refused(client, value):
    text = json.dumps(["area_m2", "@", 1]).replace('"@"', value)
    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    response = get(client, "/api/parcels/", ordering="area_m2", cursor=cursor)

    assert response.status_code == 400
    assert response.json()["error"]["en"] == (
        f"The cursor {cursor[:40]} is not one this server wrote for the ordering "
        "area_m2; follow the next link as given."
    )


def test_a_cursor_of_a_megabyte_is_refused_unread(client):
    cursor = forged("code", "S" * 1_000_000, 1)

    response = get(client, "/api/parcels/", cursor=cursor)

    assert response.status_code == 400
    assert response.json()["error"]["en"] == (
        f"The cursor {cursor[:40]} is not one this server wrote for the ordering "
        "code; follow the next link as given."
    )
