"""Every refusal of the OGC API is a 4xx OGC exception document, never a 500.

A GIS client shows the server's ``description``; our own users read ``error`` in
Chinese or English. Requests go through Django's test client with the planner's
API token, and with ``raise_request_exception=False`` so that a crash shows up
as the 500 a user would get rather than as an exception in the test.
"""

import base64
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from registry.choices import Role
from registry.models import Parcel
from tests.factories import user_with_role
from tests.registry.helpers import HAN, zh_catalogue_compiled

pytestmark = pytest.mark.django_db

ITEMS = "/ogcapi/collections/parcels/items"
COMMON_PARAMETERS = ["bbox", "bbox-crs", "crs", "limit", "datetime", "cursor", "f"]


def cursor_of(payload) -> str:
    """Return a cursor that encodes ``payload`` the way the server's cursors do."""
    text = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.fixture
def client_for():
    """Return a function that gives a test client sending a user's token."""

    def make(user=None, **headers) -> Client:
        if user is not None:
            key = Token.objects.get_or_create(user=user)[0].key
            headers.setdefault("HTTP_AUTHORIZATION", f"Token {key}")
        return Client(raise_request_exception=False, **headers)

    return make


@pytest.fixture
def api(client_for, planner, registry_parcels):
    return client_for(planner)


def assert_exception_document(
    response, status: int, code: str | None = None, *, echoes: str = ""
):
    """Assert ``response`` is the OGC exception document of a refusal.

    ``echoes`` is the text the message may quote back (it may be Chinese).
    """
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    assert isinstance(body.get("description"), str) and body["description"], body
    error = body.get("error")
    assert isinstance(error, dict) and set(error) >= {"zh", "en"}, body
    assert error["en"], error
    assert set(HAN.findall(error["en"])) <= set(echoes), error
    assert body["description"] == error["en"]
    if zh_catalogue_compiled():
        assert HAN.search(error["zh"]), error
    return body


# -- bbox ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"bbox": "113.9,22.6,114.0"},  # three numbers
        {"bbox": "113.9,22.6,114.0,22.8,1"},  # five numbers
        {"bbox": "west,south,east,north"},
        {"bbox": ""},
        {"bbox": "113.9,22.6,nan,22.8"},
        {"bbox": "113.9,22.6,inf,22.8"},
        {"bbox": "114.0,22.6,113.9,22.8"},  # min longitude above max
        {"bbox": "113.9,22.8,114.0,22.6"},  # min latitude above max
        {"bbox": "113.9,22.6,114.0,95"},  # CRS84: the latitude is second
        {"bbox": "95,113.9,96,114.0", "bbox-crs": "EPSG:4326"},  # lat, lon
        {
            "bbox": "22.6,113.9,95,114.0",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        },
        {"bbox": "2512000,492000,2510000,494000", "bbox-crs": "EPSG:4547"},
    ],
)
def test_an_unreadable_bbox_is_refused_naming_the_parameter(api, query):
    body = assert_exception_document(
        api.get(ITEMS, query), 400, "InvalidParameterValue"
    )

    assert body["parameter"] == "bbox"


def test_a_latitude_beyond_90_asks_about_the_axis_order(api):
    # A lon,lat bbox sent as EPSG:4326 (which is lat,lon): the usual mistake.
    body = assert_exception_document(
        api.get(ITEMS, {"bbox": "113.9,22.6,114.0,22.8", "bbox-crs": "EPSG:4326"}),
        400,
    )

    assert "axis order" in body["description"]


# -- CRS -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("crs", "EPSG:3857"),
        ("crs", "http://www.opengis.net/def/crs/EPSG/0/2000000"),
        ("crs", "WGS84"),
        ("crs", "OGC:CRS83"),
        ("bbox-crs", "EPSG:3857"),
        ("bbox-crs", "urn:ogc:def:crs:EPSG::9999"),
    ],
)
def test_an_unknown_crs_is_refused_listing_the_supported_ones(api, parameter, value):
    query = {parameter: value}
    if parameter == "bbox-crs":
        query["bbox"] = "0,0,1,1"
    body = assert_exception_document(api.get(ITEMS, query), 400)

    assert body["parameter"] == parameter
    assert "http://www.opengis.net/def/crs/EPSG/0/4547" in body["description"]
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in body["description"]


def test_an_unknown_crs_of_one_feature_is_refused(api, registry_parcels):
    body = assert_exception_document(
        api.get(f"{ITEMS}/{registry_parcels[0].pk}", {"crs": "EPSG:3857"}), 400
    )

    assert body["parameter"] == "crs"


# -- limit -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "10001", "x", "-1", "2.5", "1e3"])
def test_a_limit_outside_one_to_ten_thousand_is_refused(api, limit):
    body = assert_exception_document(api.get(ITEMS, {"limit": limit}), 400)

    assert body["parameter"] == "limit"
    assert "10000" in body["description"]


def test_the_extreme_limits_are_accepted(api):
    for limit in ("1", "10000"):
        assert api.get(ITEMS, {"limit": limit}).status_code == 200


# -- what does not exist ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/ogcapi/collections/roads",
        "/ogcapi/collections/roads/items",
        "/ogcapi/collections/roads/items/1",
        "/ogcapi/collections/Parcels/items",
    ],
)
def test_an_unknown_collection_is_404_listing_the_collections(api, path):
    body = assert_exception_document(api.get(path), 404, "NotFound")

    assert "parcels, buildings, projects" in body["description"]


@pytest.mark.parametrize("feature_id", ["999999999", "0", "abc", "-1", "1.0", "1e3"])
def test_an_unknown_feature_is_404(api, feature_id):
    assert_exception_document(api.get(f"{ITEMS}/{feature_id}"), 404, "NotFound")


def test_a_feature_id_longer_than_any_id_is_404(api):
    assert_exception_document(api.get(f"{ITEMS}/{'9' * 30}"), 404)


def test_a_feature_of_another_collection_is_404(api, registry_parcels):
    # Parcel ids are not building ids: there are no buildings at all here.
    response = api.get(f"/ogcapi/collections/buildings/items/{registry_parcels[0].pk}")

    assert_exception_document(response, 404)


def test_a_feature_id_of_superscript_digits_is_404(api):
    # "²".isdigit() is true, but it is not a number int() reads.
    assert_exception_document(api.get(f"{ITEMS}/%C2%B2"), 404)


# -- other parameters ------------------------------------------------------------


@pytest.mark.parametrize("name", ["colour", "offset", "sortby", "BBOX", "filter"])
def test_an_unknown_query_parameter_is_refused_listing_the_known_ones(api, name):
    body = assert_exception_document(api.get(ITEMS, {name: "1"}), 400)

    assert body["parameter"] == name
    assert "bbox" in body["description"] and "land_class" in body["description"]


def test_a_parameter_of_another_collection_is_refused(api):
    # legality filters buildings, not parcels.
    body = assert_exception_document(api.get(ITEMS, {"legality": "legal"}), 400)

    assert body["parameter"] == "legality"


def test_a_feature_takes_no_paging_parameters(api, registry_parcels):
    response = api.get(f"{ITEMS}/{registry_parcels[0].pk}", {"limit": "1"})

    assert assert_exception_document(response, 400)["parameter"] == "limit"


@pytest.mark.parametrize(
    ("name", "value"),
    [("land_class", "forest"), ("status", "demolished"), ("cleared", "maybe")],
)
def test_an_unknown_coded_value_is_refused(api, name, value):
    body = assert_exception_document(api.get(ITEMS, {name: value}), 400)

    assert body["parameter"] == name


@pytest.mark.parametrize("fmt", ["xml", "html", "csv"])
def test_only_json_is_served(api, fmt):
    body = assert_exception_document(api.get(ITEMS, {"f": fmt}), 400)

    assert body["parameter"] == "f"


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "2025-02-30T10:00:00Z",
        "2025-01-01T25:00:00Z",
        "2025-02-01/2025-01-01",  # ends before it starts
        "2025-01-01/2025-02-01/2025-03-01",
        "../yesterday",
    ],
)
def test_an_unreadable_datetime_is_refused(api, value):
    body = assert_exception_document(api.get(ITEMS, {"datetime": value}), 400)

    assert body["parameter"] == "datetime"


@pytest.mark.parametrize(
    "value", ["2025-01-01", "2025-01-01T00:00:00Z", "../..", "2024-01-01/..", "/"]
)
def test_readable_datetimes_are_accepted(api, value):
    assert api.get(ITEMS, {"datetime": value}).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!!",
        "e30",  # {}
        cursor_of(["code", "GM-001", 1]),  # another ordering
        cursor_of(["id", None, "5"]),  # the id as text
        cursor_of(["id", None, 1.5]),
        cursor_of(["id", None]),
        cursor_of(42),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
    ],
)
def test_a_cursor_the_server_did_not_write_is_refused(api, cursor):
    body = assert_exception_document(api.get(ITEMS, {"cursor": cursor}), 400)

    assert "next link" in body["description"]


def test_a_cursor_beyond_every_id_is_an_empty_page_or_a_refusal(api):
    response = api.get(ITEMS, {"cursor": cursor_of(["id", None, 10**30])})

    if response.status_code == 200:
        assert response.json()["features"] == []
    else:
        assert_exception_document(response, 400)


# -- who may ask -----------------------------------------------------------------

EVERY_PATH = [
    "/ogcapi/",
    "/ogcapi/conformance",
    "/ogcapi/collections",
    "/ogcapi/collections/parcels",
    ITEMS,
]


@pytest.mark.parametrize("path", EVERY_PATH)
def test_an_anonymous_user_gets_a_401_exception_document(client_for, path):
    response = client_for().get(path)

    assert_exception_document(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("path", EVERY_PATH)
def test_an_anonymous_user_is_refused_with_401_not_sent_to_the_login_page(
    client_for, path
):
    response = client_for().get(path)

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_wrong_token_is_refused_with_401(client_for, registry_parcels):
    response = client_for(HTTP_AUTHORIZATION="Token " + "0" * 40).get(ITEMS)

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", EVERY_PATH)
def test_a_user_without_a_role_is_refused_with_403(client_for, outsider, path):
    body = assert_exception_document(client_for(outsider).get(path), 403, "Forbidden")

    assert "role" in body["description"]


def test_a_user_whose_role_was_revoked_is_refused_at_once(client_for, registry_parcels):
    analyst = user_with_role(Role.ANALYST, username="former_analyst")
    client = client_for(analyst)
    assert client.get(ITEMS).status_code == 200

    analyst.memberships.all().delete()

    assert_exception_document(client.get(ITEMS), 403)


def test_a_session_without_a_role_is_refused_with_403(outsider):
    client = Client(raise_request_exception=False)
    client.force_login(outsider)

    assert_exception_document(client.get(ITEMS), 403)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writing_is_a_405_exception_document(api, method):
    response = getattr(api, method)(
        ITEMS, data="{}", content_type="application/geo+json"
    )

    assert_exception_document(response, 405)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writing_is_refused_with_405_and_changes_nothing(api, method, registry_parcels):
    target = f"{ITEMS}/{registry_parcels[0].pk}"
    response = getattr(api, method)(
        target, data="{}", content_type="application/geo+json"
    )

    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert "GET" in response["Allow"]
    assert Parcel.objects.count() == len(registry_parcels)


def test_head_and_options_are_not_errors(api):
    assert api.head(ITEMS).status_code == 200
    assert api.options(ITEMS).status_code == 200


# -- text reaching the database --------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "name"),
    [
        ("parcels", "code"),
        ("parcels", "project"),
        ("buildings", "code"),
        ("buildings", "parcel"),
        ("buildings", "project"),
        ("projects", "code"),
    ],
)
def test_a_nul_character_in_a_text_filter_is_not_a_server_error(api, collection, name):
    response = api.get(f"/ogcapi/collections/{collection}/items", {name: "GM\x00"})

    if response.status_code == 200:
        assert response.json()["features"] == []
    else:
        assert_exception_document(response, 400)


PARAMETERS = {
    "parcels": [*COMMON_PARAMETERS, "project", "land_class", "status", "street",
                "code", "cleared"],
    "buildings": [*COMMON_PARAMETERS, "project", "parcel", "status", "legality",
                  "code"],
    "projects": [*COMMON_PARAMETERS, "code", "kind", "street"],
}  # fmt: skip


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    collection=st.sampled_from(sorted(PARAMETERS)),
    data=st.data(),
)
def test_any_query_is_answered_or_refused_never_a_server_error(api, collection, data):
    names = data.draw(
        st.lists(st.sampled_from(PARAMETERS[collection]), min_size=1, max_size=4)
    )
    text = st.one_of(
        # NUL has a test of its own (above): it is a known 500.
        st.text(
            alphabet=st.characters(
                exclude_characters="\x00", exclude_categories=["Cs"]
            ),
            max_size=30,
        ),
        st.sampled_from(["", "..", "1", "0", "-1", "1e999", "true", "EPSG:4547"]),
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6
        ).map(lambda ns: ",".join(map(repr, ns))),
    )
    query = {name: data.draw(text) for name in names}

    response = api.get(f"/ogcapi/collections/{collection}/items", query)

    assert response.status_code in (200, 400), (query, response.content[:300])
    if response.status_code == 400:
        quoted = "".join(query.values())
        assert_exception_document(response, 400, echoes=quoted)
