"""Tile endpoints: login, tokens, empty tiles, ETags, TileJSON, bilingual errors."""

import mapbox_vector_tile
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from registry.workflow import Status
from tests.factories import ParcelFactory
from tests.tilesvc.conftest import tile_of

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture
def parcel(project):
    return ParcelFactory(code="SC-1", project=project, status=Status.CLEARED)


def url_of(parcel, z=16, layer="parcels", query=""):
    tile = tile_of(parcel.geom, z)
    return f"/tiles/{layer}/{z}/{tile.x}/{tile.y}.mvt" + (f"?{query}" if query else "")


def test_a_planner_gets_the_tile_then_the_cached_copy(login, planner, parcel):
    client = login(planner)

    first = client.get(url_of(parcel))
    second = client.get(url_of(parcel))

    assert first.status_code == 200
    assert first["Content-Type"] == MVT
    assert (first["X-Tile-Cache"], second["X-Tile-Cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert first["ETag"] == second["ETag"]
    assert first["Cache-Control"] == "private, no-cache"
    codes = [
        f["properties"]["code"]
        for f in mapbox_vector_tile.decode(first.content)["parcels"]["features"]
    ]
    assert codes == ["SC-1"]


def test_an_unchanged_tile_is_not_sent_again(login, planner, parcel):
    client = login(planner)
    etag = client.get(url_of(parcel))["ETag"]

    again = client.get(url_of(parcel), HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""


def test_a_tile_with_nothing_in_it_is_204(login, planner, parcel):
    assert login(planner).get("/tiles/parcels/16/0/0.mvt").status_code == 204
    assert login(planner).get(url_of(parcel, z=5)).status_code == 204  # below minzoom


def test_filters_make_their_own_tiles(login, planner, parcel):
    client = login(planner)

    banked_only = client.get(url_of(parcel, query="status=banked"))
    cleared_only = client.get(url_of(parcel, query="status=cleared"))

    assert banked_only.status_code == 204
    assert cleared_only.status_code == 200


def test_tiles_need_a_login_or_a_token(client, planner, parcel):
    token = Token.objects.create(user=planner)

    anonymous = client.get(url_of(parcel))
    with_token = Client().get(url_of(parcel), HTTP_AUTHORIZATION=f"Token {token}")
    bad_token = Client().get(url_of(parcel), HTTP_AUTHORIZATION="Token nope")

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["zh"]
    assert with_token.status_code == 200
    assert bad_token.status_code == 401


def test_users_without_a_role_get_no_tiles(login, outsider, parcel):
    response = login(outsider).get(url_of(parcel))

    assert response.status_code == 403
    assert response.json()["error"]["en"].startswith("You hold no role")


def test_a_tile_request_changes_nothing_and_posts_are_refused(login, planner, parcel):
    assert login(planner).post(url_of(parcel)).status_code == 405


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/tiles/roads/16/1/1.mvt", 404, "NotFound"),
        ("/tiles/parcels/19/1/1.mvt", 404, "NotFound"),
        ("/tiles/parcels/3/9/1.mvt", 404, "NotFound"),
        ("/tiles/parcels/16/1/1.mvt?status=gone", 400, "BadQuery"),
        ("/tiles/parcels/16/1/1.mvt?colour=red", 400, "BadQuery"),
        ("/tiles/buildings/16/1/1.mvt?land_class=collective", 400, "BadQuery"),
    ],
)
def test_bad_tile_requests_say_what_was_wrong(login, planner, path, status, code):
    response = login(planner).get(path)

    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["error"]["zh"] and body["error"]["en"]


def test_tilejson_describes_the_layer_and_keeps_the_filters(login, planner, parcel):
    document = login(planner).get("/tiles/parcels.json?project=GM-SC").json()

    assert document["tilejson"] == "3.0.0"
    assert document["tiles"] == [
        "http://testserver/tiles/parcels/{z}/{x}/{y}.mvt?project=GM-SC"
    ]
    assert (document["minzoom"], document["maxzoom"]) == (12, 18)
    layer = document["vector_layers"][0]
    assert layer["id"] == "parcels"
    assert layer["fields"]["cleared"] == "Boolean"
    west, south, east, north = document["bounds"]
    assert 113.7 < west < east < 114.1 and 22.6 < south < north < 22.9


def test_a_role_is_needed_for_a_drawn_tile_and_for_a_cached_one(
    login, planner, outsider, parcel
):
    token = Token.objects.create(user=outsider)
    as_outsider = Client(HTTP_AUTHORIZATION=f"Token {token}")

    not_drawn = as_outsider.get(url_of(parcel))  # nothing cached yet
    drawn_for_the_planner = login(planner).get(url_of(parcel))
    not_served = as_outsider.get(url_of(parcel))  # now it is cached
    by_session = login(outsider).get(url_of(parcel))

    assert drawn_for_the_planner["X-Tile-Cache"] == "miss"  # the refusal kept none
    for refused in (not_drawn, not_served, by_session):
        assert refused.status_code == 403
        assert refused.json()["error"]["en"].startswith("You hold no role")
        assert "ETag" not in refused


def test_an_inactive_users_token_reads_no_tiles(planner, parcel):
    token = Token.objects.create(user=planner)
    planner.is_active = False
    planner.save()

    response = Client().get(url_of(parcel), HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 401
    assert response.json()["code"] == "NotLoggedIn"


@pytest.mark.parametrize(
    "authorization", ["Token", "Token a b", "Bearer x", "Token \u00e9\u00e9"]
)
def test_a_malformed_token_header_is_not_a_login(authorization, parcel):
    response = Client().get(url_of(parcel), HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401


def test_a_bad_tile_request_says_nothing_to_the_anonymous_or_roleless(
    client, login, outsider
):
    assert client.get("/tiles/roads/16/1/1.mvt").status_code == 401
    assert login(outsider).get("/tiles/roads/16/1/1.mvt").status_code == 403
    assert login(outsider).get("/tiles/parcels/5/1/1.mvt").status_code == 403


@pytest.mark.parametrize(
    "persona",
    ["planner", "analyst", "surveyor", "case_officer", "registry_admin", "outsider"],
)
def test_the_sql_check_of_a_reader_agrees_with_the_registrys(
    persona, request, django_user_model
):
    from registry import access
    from tilesvc.readers import READER, Caller

    user = request.getfixturevalue(persona)
    superuser = django_user_model.objects.create_superuser("root", password="x")
    for someone in (user, superuser):
        key = Token.objects.create(user=someone).key
        for active in (True, False):
            someone.is_active = active
            someone.save()
            by_session = _verdict(Caller.of(_session_of(someone)))
            by_token = _verdict(Caller.of(_token_request(key)))

            reads = access.can_read_registry(someone)
            assert (by_session == READER, by_token == READER) == (reads, reads)


def _session_of(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


def _token_request(key):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {key}")
    request.user = AnonymousUser()
    return request


def _verdict(caller) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(caller.sql, caller.params)
        return cursor.fetchone()[0]


def test_a_drawn_tile_is_kept_once_the_response_is_sent(planner, parcel, rf):
    from tilesvc import cache, views
    from tilesvc.vector import PARCELS

    tile = tile_of(parcel.geom, 16)
    request = rf.get(url_of(parcel))
    request.user = planner
    key = cache.entry_key(PARCELS, 16, tile.x, tile.y, {})

    response = views.tile(request, "parcels", 16, tile.x, tile.y)
    kept_while_sending = cache.get(key)
    response.close()  # what the WSGI server does after the last byte

    assert response.status_code == 200
    assert kept_while_sending is None
    stamp, data = cache.get(key)
    assert data == response.content
    assert cache.etag_of(key, stamp) == response["ETag"].strip('"')
