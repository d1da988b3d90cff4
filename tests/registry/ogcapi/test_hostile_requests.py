"""Hostile requests to OGC API – Features: each a clear bilingual 4xx, bounded.

Every filter of every collection given values that look like SQL, page sizes no
server should honour, bboxes and datetimes that are not what they claim,
collection and feature ids that are not ids, cursors tampered with. The
requests run under a 2-second ``statement_timeout`` and must come back within
2 seconds without showing SQL or Python errors (``tests.registry.hostile``).
"""

import base64
import json
from urllib.parse import quote, urlencode

import pytest

from registry.models import Parcel
from registry.ogcapi.collections import COLLECTIONS
from tests.registry.hostile import ask, refused, statement_timeout

SQL_LIKE = ["' OR 1=1 --", ";DROP TABLE registry_parcel;--"]
COMMON = "bbox, bbox-crs, crs, limit, datetime, cursor, f"
CODED = {
    "land_class": "collective, state_farm, unfinished_expropriation",
    "street": "guangming, gongming, xinhu, fenghuang, yutang, matian",
    "kind": "rail, road, industrial, campus, science_city, village_relocation, other",
    "legality": "permitted, historical_legacy, unpermitted_0962, unknown",
}
STATUSES = {
    "parcels": "surveyed, declared, verified, signed, cleared, banked",
    "buildings": "unsigned, signed, vacated, demolished",
}


@pytest.fixture
def client(login, planner, registry_parcels):
    with statement_timeout():
        yield login(planner)


def items(client, collection: str, **query):
    return ask(
        client, "get", f"/ogcapi/collections/{collection}/items?{urlencode(query)}"
    )


def expected_refusal(collection: str, parameter: str, value: str) -> str | None:
    """Return the English refusal of ``value`` for a filter (None: free text)."""
    if parameter in ("project", "parcel", "code"):
        return None
    if parameter == "status":
        known = STATUSES[collection]
    elif parameter == "cleared":
        return f"cleared must be true or false, not {value[:20]}."
    else:
        known = CODED[parameter]
    return f"{parameter}: unknown value {value}; known values: {known}."


FILTERS = [
    (collection.id, name)
    for collection in COLLECTIONS.values()
    for name in collection.filters
]


@pytest.mark.parametrize("value", SQL_LIKE)
@pytest.mark.parametrize(("collection", "parameter"), FILTERS)
def test_a_filter_that_looks_like_sql_is_a_value_never_sql(
    client, collection, parameter, value
):
    response = items(client, collection, **{parameter: value})

    english = expected_refusal(collection, parameter, value)
    if english is None:
        assert response.status_code == 200
        assert json.loads(response.content)["numberReturned"] == 0
    else:
        body = refused(response, parameter=parameter, en=english)
        assert body["code"] == "InvalidParameterValue"
    assert Parcel.objects.count() == 25


@pytest.mark.parametrize("value", SQL_LIKE)
@pytest.mark.parametrize(
    ("parameter", "english"),
    [
        ("bbox", "bbox must be 4/6 comma-separated numbers, not {v}."),
        ("datetime", "datetime is not an RFC 3339 date-time or interval: {v}"),
        ("limit", "limit must be a whole number from 1 to 10000, not {v20}."),
        ("f", "f: only json is served, not {v20}."),
        (
            "cursor",
            "The cursor {v} is not one this server wrote for the ordering id; "
            "follow the next link as given.",
        ),
    ],
)
def test_a_common_parameter_that_looks_like_sql_is_refused(
    client, parameter, english, value
):
    refused(
        items(client, "parcels", **{parameter: value}),
        parameter=parameter,
        en=english.format(v=value, v20=value[:20]),
    )


@pytest.mark.parametrize("value", SQL_LIKE)
def test_an_unknown_parameter_that_looks_like_sql_is_refused(client, value):
    refused(
        items(client, "parcels", **{value: "1"}),
        parameter=value,
        en=f"{value} is not a parameter of parcels; its parameters are {COMMON}, "
        "project, land_class, status, street, code, cleared.",
    )


@pytest.mark.parametrize("collection_id", [*SQL_LIKE, "parcels'--", "x" * 10_000])
def test_a_collection_that_looks_like_sql_is_not_found(client, collection_id):
    response = ask(client, "get", f"/ogcapi/collections/{quote(collection_id)}/items")

    refused(
        response,
        parameter=None,
        status=404,
        en=f"There is no collection {collection_id[:40]}; the collections are "
        "parcels, buildings, projects.",
    )


@pytest.mark.parametrize(
    "feature_id",
    ["1 OR 1=1", "1;DROP TABLE registry_parcel", "-1", "1e3", "²", "9" * 19, "0x1"],
)
def test_a_feature_id_that_is_no_number_is_not_found(client, feature_id):
    response = ask(
        client, "get", f"/ogcapi/collections/parcels/items/{quote(feature_id)}"
    )

    refused(
        response,
        parameter=None,
        status=404,
        en=f"There is no feature {feature_id[:40]}; feature ids are numbers.",
    )


def test_a_feature_id_beyond_any_parcel_is_not_found(client):
    refused(
        ask(client, "get", "/ogcapi/collections/parcels/items/999999999999999999"),
        parameter=None,
        status=404,
        en="parcels has no feature 999999999999999999.",
    )


@pytest.mark.parametrize(
    "limit", ["1000000000000", "-1", "0", "10001", "1e3", "NaN", "٣", "9" * 5000]
)
def test_a_page_size_out_of_range_is_refused(client, limit):
    refused(
        items(client, "parcels", limit=limit),
        parameter="limit",
        en=f"limit must be a whole number from 1 to 10000, not {limit[:20]}.",
    )


def test_the_largest_page_is_served(client):
    body = json.loads(items(client, "parcels", limit="10000").content)
    assert body["numberReturned"] == 25


@pytest.mark.parametrize(
    "bbox", ["nan,22,114,23", "-inf,-inf,inf,inf", "113,22,1e400,23", "113,22"]
)
def test_a_bbox_that_is_not_finite_numbers_is_refused(client, bbox):
    refused(
        items(client, "buildings", bbox=bbox),
        parameter="bbox",
        en=f"bbox must be 4/6 comma-separated numbers, not {bbox}.",
    )


def test_a_bbox_of_huge_metres_is_a_query_bounded_by_the_page(client):
    body = json.loads(
        items(
            client,
            "parcels",
            bbox="-1e308,-1e308,1e308,1e308",
            **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4547"},
            limit="3",
        ).content
    )

    assert body["numberReturned"] == 3


@pytest.mark.parametrize(
    "datetime",
    [
        "99999-01-01T00:00:00Z",
        "2024-13-45",
        "2024-01-01T00:00:00Z/2023-01-01T00:00:00Z",
        "../..'; --",
    ],
)
def test_a_datetime_that_is_not_one_is_refused(client, datetime):
    response = items(client, "parcels", datetime=datetime)

    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == "datetime"
    assert body["code"] == "InvalidParameterValue"
    assert body["error"]["en"].startswith("datetime")


def cursor_of(*payload) -> str:
    text = json.dumps(list(payload))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of("code", "GM-001", 1),  # another ordering than the items' id
        cursor_of("id", None, 2**63),
        cursor_of("id", None, -5),
        cursor_of("id", None, "1 OR 1=1"),
        cursor_of("id", None, 1) + "A" * 600,
        "%%%",
    ],
)
def test_a_tampered_cursor_is_refused(client, cursor):
    refused(
        items(client, "parcels", cursor=cursor),
        parameter="cursor",
        en=f"The cursor {cursor[:40]} is not one this server wrote for the ordering "
        "id; follow the next link as given.",
    )


def test_the_next_link_is_followed_to_the_end(client):
    url = "/ogcapi/collections/parcels/items?limit=10"
    seen = []
    while url:
        body = json.loads(ask(client, "get", url).content)
        seen += [feature["id"] for feature in body["features"]]
        url = next((x["href"] for x in body["links"] if x["rel"] == "next"), None)

    assert len(seen) == len(set(seen)) == 25
