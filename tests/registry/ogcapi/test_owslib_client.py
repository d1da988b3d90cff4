"""OWSLib's OGC API – Features client reads the registry as a Python script would.

Against the live server, with the planner's token in ``headers``. OWSLib keeps
its request headers in one module-level dict and adds each client's headers to
it, so a token given once would be sent by every later client: each test starts
with a fresh copy, and the anonymous test really is anonymous.
"""

from urllib.parse import parse_qs, urlsplit

import owslib.ogcapi
import pytest
from owslib.ogcapi.features import Features
from rest_framework.authtoken.models import Token

from registry.models import Parcel

CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
}


@pytest.fixture(autouse=True)
def own_request_headers(monkeypatch):
    monkeypatch.setattr(
        owslib.ogcapi, "REQUEST_HEADERS", dict(owslib.ogcapi.REQUEST_HEADERS)
    )


@pytest.fixture
def api_url(transactional_db, registry_parcels, live_server) -> str:
    return f"{live_server.url}/ogcapi/"


@pytest.fixture
def features(api_url, planner) -> Features:
    key = Token.objects.create(user=planner).key
    return Features(api_url, headers={"Authorization": f"Token {key}"})


def link(document: dict, rel: str) -> dict | None:
    return next((k for k in document["links"] if k["rel"] == rel), None)


def test_the_landing_page_links_to_conformance_collections_and_the_api(
    features, api_url
):
    landing = features.response

    assert landing["title"]
    rels = {k["rel"]: k for k in features.links}
    assert rels["self"]["href"] == api_url
    assert rels["conformance"]["href"] == f"{api_url}conformance"
    assert rels["data"]["href"] == f"{api_url}collections"
    assert rels["service-desc"]["type"].startswith("application/vnd.oai.openapi")


def test_the_api_definition_describes_the_items_endpoint(features):
    definition = features.api()

    assert definition["openapi"].startswith("3.")
    assert "/ogcapi/collections/{collection_id}/items" in definition["paths"]


def test_conformance_declares_core_geojson_and_crs(features):
    assert set(features.conformance()["conformsTo"]) >= CONFORMANCE


def test_collections_are_the_three_feature_collections(features):
    collections = features.collections()

    assert features.feature_collections() == ["parcels", "buildings", "projects"]
    for collection in collections["collections"]:
        assert collection["title"]
        assert link(collection, "items")["type"] == "application/geo+json"


def test_parcels_metadata_names_the_crss_and_the_extent_of_the_parcels(features):
    parcels = features.collection("parcels")

    assert parcels["id"] == "parcels"
    assert parcels["itemType"] == "feature"
    assert parcels["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4547"
    assert set(parcels["crs"]) >= {
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/4490",
        "http://www.opengis.net/def/crs/EPSG/0/4547",
    }
    (west, south, east, north) = parcels["extent"]["spatial"]["bbox"][0]
    assert 113.5 < west < east < 114.3 and 22.0 < south < north < 23.2
    start, end = parcels["extent"]["temporal"]["interval"][0]
    assert start <= end


def test_items_follow_next_links_to_every_parcel_exactly_once(features):
    seen, pages = [], 0
    query = {"limit": 4}
    while True:
        page = features.collection_items("parcels", **query)
        pages += 1
        assert page["type"] == "FeatureCollection"
        assert page["numberReturned"] == len(page["features"]) <= 4
        seen += [feature["properties"]["code"] for feature in page["features"]]
        following = link(page, "next")
        if following is None:
            break
        parameters = parse_qs(urlsplit(following["href"]).query)
        assert parameters["limit"] == ["4"], "the next link forgot the page size"
        query = {"limit": 4, "cursor": parameters["cursor"][0]}
        assert pages < 20, "the next links go round in circles"

    codes = sorted(Parcel.objects.values_list("code", flat=True))
    assert sorted(seen) == codes, "not every parcel exactly once"
    assert pages == -(-len(codes) // 4)  # 25 parcels: 7 pages, the last of 1


def test_filters_stay_in_the_next_links(features, registry_parcels):
    def codes_of(**query) -> list[str]:
        codes, query = [], {"limit": 2, **query}
        while True:
            page = features.collection_items("parcels", **query)
            codes += [f["properties"]["code"] for f in page["features"]]
            following = link(page, "next")
            if following is None:
                return codes
            parameters = parse_qs(urlsplit(following["href"]).query)
            query = {k: v[0] for k, v in parameters.items()}

    by_project = codes_of(project="GM-SC")
    by_class = codes_of(land_class="state_farm")

    assert sorted(by_project) == sorted(
        p.code for p in registry_parcels if p.project and p.project.code == "GM-SC"
    )
    assert sorted(by_class) == sorted(
        p.code for p in registry_parcels if p.land_class == "state_farm"
    )


def test_an_item_by_id_is_the_parcel_with_its_chinese_names(features):
    parcel = Parcel.objects.select_related("project").get(code="GM-004")

    feature = features.collection_item("parcels", str(parcel.pk))

    assert feature["type"] == "Feature"
    assert feature["id"] == parcel.pk
    properties = feature["properties"]
    assert properties["code"] == "GM-004"
    assert properties["project"] == parcel.project.code
    assert properties["project_name"] == parcel.project.name_zh
    assert properties["area_m2"] == pytest.approx(parcel.area_m2, abs=0.01)
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert link(feature, "self")["href"].endswith(f"/items/{parcel.pk}")
    assert link(feature, "collection")["href"].endswith("/collections/parcels")


def test_an_item_is_the_same_feature_as_in_the_collection(features):
    parcel = Parcel.objects.get(code="GM-007")
    page = features.collection_items("parcels", code="GM-007")

    feature = features.collection_item("parcels", str(parcel.pk))

    (listed,) = page["features"]
    assert {k: v for k, v in feature.items() if k != "links"} == listed


def test_an_unknown_item_is_an_error_for_owslib(features):
    with pytest.raises(RuntimeError, match="NotFound"):
        features.collection_item("parcels", "999999999")


def test_without_a_token_owslib_reads_nothing(api_url):
    anonymous = Features(api_url)

    # OWSLib takes the 401's body for the landing page: no links in it.
    assert anonymous.links == []
    with pytest.raises(RuntimeError):
        anonymous.collections()
    with pytest.raises(RuntimeError):
        anonymous.collection_items("parcels")


def test_the_token_of_a_user_without_a_role_reads_nothing(api_url, outsider):
    key = Token.objects.create(user=outsider).key
    refused = Features(api_url, headers={"Authorization": f"Token {key}"})

    assert refused.links == []
    with pytest.raises(RuntimeError, match="Forbidden"):
        refused.collection_items("parcels")
