"""API tokens: a page to issue, rotate and revoke one's own, admin and command.

A revoked token is refused on the very next request to each API that takes
tokens: REST, OGC API – Features, vector tiles and orthophoto tiles.
"""

from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from registry import tokens
from tests.factories import ParcelFactory
from tests.tilesvc.conftest import tile_of

pytestmark = pytest.mark.django_db

PAGE = "/accounts/token/"


def with_token(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def parcel(project):
    return ParcelFactory(project=project)


@pytest.fixture
def token_urls(parcel):
    tile = tile_of(parcel.geom, 16)
    return [
        "/api/parcels/?limit=1",
        f"/api/parcels/{parcel.pk}/",
        "/ogcapi/collections",
        "/ogcapi/collections/parcels/items?limit=1",
        "/tiles/parcels.json",
        f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt",
    ]


def test_the_page_says_there_is_no_token_yet(login, planner):
    response = login(planner).get(PAGE)

    assert response.status_code == 200
    assert '<p id="token-state">你还没有令牌。</p>' in response.content.decode()


def test_a_new_token_is_shown_once_and_never_again(login, planner):
    client = login(planner, language="en")

    issued = client.post(PAGE, {"action": "issue"})
    key = Token.objects.get(user=planner).key
    later = client.get(PAGE)

    assert issued.status_code == 200
    assert f'<code id="token-key">{key}</code>' in issued.content.decode()
    assert "no-store" in issued["Cache-Control"]
    assert later.status_code == 200
    assert key not in later.content.decode()
    created = Token.objects.get(user=planner).created
    stamp = created.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f"You have a token, created {stamp}." in later.content.decode()


def test_rotating_refuses_the_old_key_and_admits_the_new(login, planner, token_urls):
    old = Token.objects.create(user=planner).key
    client = login(planner)

    client.post(PAGE, {"action": "issue"})
    new = Token.objects.get(user=planner).key

    assert new != old
    for url in token_urls:
        assert with_token(old).get(url).status_code == 401, url
        assert with_token(new).get(url).status_code == 200, url


def test_a_revoked_token_is_refused_on_the_next_request(login, planner, token_urls):
    key = Token.objects.create(user=planner).key
    for url in token_urls:  # also fills the tile cache: a cached tile is no way in
        assert with_token(key).get(url).status_code == 200, url

    response = login(planner).post(PAGE, {"action": "revoke"})

    assert response.status_code == 302
    assert not Token.objects.filter(user=planner).exists()
    for url in token_urls:
        refused = with_token(key).get(url)
        assert refused.status_code == 401, url
        assert refused["Content-Type"].startswith("application/json"), url


def test_a_revoked_token_no_longer_reads_orthophoto_tiles(
    settings, tmp_path, project, surveyor, planner
):
    from tests.tilesvc.test_imagery import place_in, write_geotiff
    from tilesvc import imagery

    settings.IMAGERY_DIR = tmp_path / "imagery"
    place = place_in(project)
    orthophoto = imagery.orthophoto_ingest(
        project=project,
        upload_path=write_geotiff(
            tmp_path / "o.tif", west=place.west, north=place.north
        ),
        title="科学城",
        actor=surveyor,
    )
    tile = place.tile
    url = f"/imagery/{orthophoto.pk}/tiles/{tile.z}/{tile.x}/{tile.y}.png"
    key = tokens.token_issue(user=planner).key
    assert with_token(key).get(url).status_code == 200

    tokens.token_revoke(user=planner)

    assert with_token(key).get(url).status_code == 401
    assert (
        with_token(key).get(f"/imagery/{orthophoto.pk}/tilejson.json").status_code
        == 401
    )


def test_revoking_needs_the_csrf_token(login, planner):
    Token.objects.create(user=planner)

    response = login(planner, enforce_csrf_checks=True).post(PAGE, {"action": "revoke"})

    assert response.status_code == 403
    assert Token.objects.filter(user=planner).exists()


def test_a_get_changes_nothing(login, planner):
    Token.objects.create(user=planner)
    key = Token.objects.get(user=planner).key

    login(planner).get(PAGE, {"action": "revoke"})

    assert Token.objects.get(user=planner).key == key


def test_a_user_without_a_role_gets_no_token(login, outsider):
    client = login(outsider)

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"action": "issue"}).status_code == 403
    assert not Token.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PAGE}"


def test_a_registry_admin_revokes_anyones_token_in_the_admin(
    login, planner, registry_admin
):
    key = Token.objects.create(user=planner).key
    assert with_token(key).get("/api/projects/").status_code == 200

    response = login(registry_admin).post(
        f"/admin/authtoken/tokenproxy/{planner.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Token.objects.exists()
    assert with_token(key).get("/api/projects/").status_code == 401


def test_the_command_issues_rotates_and_revokes(planner, capsys):
    call_command("api_token", "planner")
    first = capsys.readouterr().out.strip()
    call_command("api_token", "planner")
    second = capsys.readouterr().out.strip()

    assert Token.objects.get(user=planner).key == second != first
    assert with_token(first).get("/api/projects/").status_code == 401
    assert with_token(second).get("/api/projects/").status_code == 200

    call_command("api_token", "planner", "--revoke")

    assert "Revoked the API token of planner." in capsys.readouterr().out
    assert not Token.objects.exists()
    assert with_token(second).get("/api/projects/").status_code == 401


def test_the_command_names_an_unknown_user():
    with pytest.raises(CommandError, match=r"There is no user nobody\."):
        call_command("api_token", "nobody")


def test_the_admin_lists_who_has_a_token_but_not_the_keys(
    login, planner, analyst, registry_admin
):
    keys = [Token.objects.create(user=user).key for user in (planner, analyst)]
    admin = login(registry_admin)

    listing = admin.get("/admin/authtoken/tokenproxy/")

    assert listing.status_code == 200
    assert "planner" in listing.content.decode()
    assert not [key for key in keys if key in listing.content.decode()]
    assert admin.get("/admin/authtoken/tokenproxy/add/").status_code == 403
    moved = admin.post(
        f"/admin/authtoken/tokenproxy/{planner.pk}/change/", {"user": analyst.pk}
    )
    assert moved.status_code == 403
    assert Token.objects.get(key=keys[0]).user == planner
