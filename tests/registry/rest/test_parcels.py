"""The parcels REST API: filters, keyset pages, search by drawing, detail, moves."""

import json

import pytest
from pyproj import Transformer

from registry.choices import BuildingStatus, LandClass, Role
from registry.models import Parcel, ParcelStatusChange
from registry.workflow import Status
from tests.factories import BuildingFactory, ParcelFactory, user_with_role

TO_LONLAT = Transformer.from_crs(4547, 4326, always_xy=True)


@pytest.fixture
def land(project, other_project):
    """Ten parcels in ``project`` and three in ``other_project``."""
    parcels = {}
    for n in range(10):
        parcels[f"SC-{n:02d}"] = ParcelFactory(
            code=f"SC-{n:02d}",
            project=project,
            side=20.0 + n,
            status=Status.CLEARED if n < 4 else Status.SIGNED,
            land_class=LandClass.STATE_FARM if n % 3 == 0 else LandClass.COLLECTIVE,
        )
    for n in range(3):
        parcels[f"L6-{n}"] = ParcelFactory(
            code=f"L6-{n}", project=other_project, status=Status.BANKED
        )
    return parcels


def features(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/geo+json"
    return json.loads(response.content)["features"]


def codes(response) -> list[str]:
    return [f["properties"]["code"] for f in features(response)]


def test_it_lists_parcels_by_code_with_their_figures(login, planner, land):
    response = login(planner).get("/api/parcels/?project=GM-SC&limit=3")

    page = features(response)
    assert [f["properties"]["code"] for f in page] == ["SC-00", "SC-01", "SC-02"]
    first = page[0]
    assert first["id"] == land["SC-00"].pk
    assert first["properties"]["project_name"] == "光明科学城启动区"
    assert first["properties"]["area_m2"] == pytest.approx(
        land["SC-00"].area_m2, abs=0.01
    )
    assert first["properties"]["cleared"] is True
    assert first["geometry"]["type"] == "MultiPolygon"


def test_it_combines_attribute_filters(login, planner, land):
    client = login(planner)

    assert codes(client.get("/api/parcels/?status=banked")) == ["L6-0", "L6-1", "L6-2"]
    assert codes(
        client.get("/api/parcels/?project=GM-SC&land_class=state_farm&cleared=true")
    ) == ["SC-00", "SC-03"]
    assert (
        codes(client.get("/api/parcels/?status=cleared,banked&code_prefix=SC-0"))[-1]
        == "SC-03"
    )
    assert codes(client.get("/api/parcels/?code=SC-07")) == ["SC-07"]


def test_keyset_pages_cover_every_parcel_once_in_any_ordering(login, planner, land):
    client = login(planner)
    for ordering in ("code", "-code", "area_m2", "-area_m2", "updated_at"):
        seen, url = [], f"/api/parcels/?limit=4&ordering={ordering}"
        while url:
            body = json.loads(client.get(url).content)
            seen += [f["properties"]["code"] for f in body["features"]]
            url = body["next"]
        assert sorted(seen) == sorted(land), ordering
        assert len(seen) == len(set(seen))
    by_area = codes(client.get("/api/parcels/?project=GM-SC&ordering=-area_m2&limit=3"))
    assert by_area == ["SC-09", "SC-08", "SC-07"]


def test_a_parcel_changed_between_two_pages_is_neither_lost_nor_repeated(
    login, planner, land
):
    client = login(planner)
    first = json.loads(client.get("/api/parcels/?limit=5").content)
    # A parcel already read moves ahead in code order; an OFFSET page would now
    # repeat or skip a row.
    Parcel.objects.filter(code="L6-0").update(code="ZZ-0")
    rest, url = [], first["next"]
    while url:
        body = json.loads(client.get(url).content)
        rest += [f["properties"]["code"] for f in body["features"]]
        url = body["next"]
    firsts = [f["properties"]["code"] for f in first["features"]]
    assert set(firsts).isdisjoint(rest)
    assert len(firsts) + len(rest) == len(land) + 1  # ZZ-0 is read again: it moved


def test_bbox_and_point_find_the_parcels_under_them(login, planner, land):
    client = login(planner)
    x0, y0, x1, y1 = land["SC-05"].geom.extent
    lon0, lat0 = TO_LONLAT.transform(x0 + 1, y0 + 1)
    lon1, lat1 = TO_LONLAT.transform(x1 - 1, y1 - 1)

    assert codes(client.get(f"/api/parcels/?bbox={lon0},{lat0},{lon1},{lat1}")) == [
        "SC-05"
    ]
    assert codes(
        client.get(
            f"/api/parcels/?bbox={y0 + 1},{x0 + 1},{y1 - 1},{x1 - 1}"
            "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4547"
        )
    ) == ["SC-05"]
    assert codes(client.get(f"/api/parcels/?point={lon0},{lat0}")) == ["SC-05"]
    assert codes(client.get("/api/parcels/?bbox=113.5,22.3,113.6,22.4")) == []


def test_updated_since_keeps_recent_changes(login, planner, land):
    Parcel.objects.filter(code="SC-01").update(updated_at="2030-01-01T00:00:00Z")

    response = login(planner).get("/api/parcels/?updated_since=2029-12-31")

    assert codes(response) == ["SC-01"]


def test_search_by_a_drawn_polygon_lists_the_parcels_it_hits(login, planner, land):
    x0, y0, _, _ = land["SC-02"].geom.extent
    _, _, x1, y1 = land["SC-03"].geom.extent
    ring = [
        TO_LONLAT.transform(x, y)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))
    ]
    drawn = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}

    response = login(planner).post(
        "/api/parcels/search/",
        {"intersects": drawn, "project": "GM-SC"},
        content_type="application/json",
    )

    assert set(codes(response)) >= {"SC-02", "SC-03"}


@pytest.mark.parametrize(
    "geometry, parameter",
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "intersects"),
        ("not json", "intersects"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[113.9, 22.7], [114.0, 22.8], [114.0, 22.7],
                                 [113.9, 22.8], [113.9, 22.7]]],
            },
            "intersects",
        ),  # a bow tie
        (
            {
                "type": "Polygon",
                "coordinates": [[[113.0, 22.0], [115.0, 22.0], [115.0, 24.0],
                                 [113.0, 24.0], [113.0, 22.0]]],
            },
            "intersects",
        ),  # far larger than the district
    ],
)  # fmt: skip
def test_search_refuses_unusable_geometries(login, planner, land, geometry, parameter):
    response = login(planner).post(
        "/api/parcels/search/",
        {"intersects": geometry},
        content_type="application/json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == parameter
    assert body["error"]["zh"] and body["error"]["en"]


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=114,23,113,22", "bbox"),
        ("bbox-crs=EPSG:3857&bbox=1,2,3,4", "bbox-crs"),
        ("crs=urn:nothing", "crs"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("status=gone", "status"),
        ("cleared=maybe", "cleared"),
        ("ordering=owner", "ordering"),
        ("cursor=garbage", "cursor"),
        ("updated_since=yesterday", "updated_since"),
        ("colour=red", "colour"),
        ("bbox=113.9,22.7,114,22.8&point=113.9,22.7", "point"),
    ],
)
def test_bad_parameters_get_a_bilingual_400_naming_them(
    login, planner, land, query, parameter
):
    response = login(planner).get(f"/api/parcels/?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body.get("parameter", "cursor") == parameter
    assert body["code"] in {"InvalidParameterValue", "BadCursor"}
    assert body["error"]["en"] and body["error"]["zh"]


def test_a_cursor_of_another_ordering_is_refused(login, planner, land):
    client = login(planner)
    cursor = json.loads(client.get("/api/parcels/?limit=2").content)["next_cursor"]

    response = client.get(f"/api/parcels/?ordering=-area_m2&cursor={cursor}")

    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["en"]


def test_the_detail_shows_buildings_history_and_open_moves(
    login, case_officer, planner, land
):
    parcel = land["SC-05"]
    BuildingFactory(parcel=parcel, code="SC-05-B1", status=BuildingStatus.SIGNED)
    ParcelStatusChange.objects.create(
        parcel=parcel, move="create", from_status="", to_status="signed",
        actor=case_officer, at="2025-01-01T00:00:00Z",
    )  # fmt: skip

    as_officer = login(case_officer).get(f"/api/parcels/{parcel.pk}/").json()
    as_planner = login(planner).get(f"/api/parcels/{parcel.pk}/").json()

    assert as_officer["code"] == "SC-05"
    assert as_officer["project"]["name"] == "光明科学城启动区"
    assert [b["code"] for b in as_officer["buildings"]] == ["SC-05-B1"]
    assert as_officer["buildings"][0]["owner_group"] == "original_villager"
    assert as_planner["buildings"][0]["owner_group"] is None  # personal data
    assert [h["to_status"] for h in as_officer["history"]] == ["signed"]
    moves = {m["to_status"]: m["allowed"] for m in as_officer["moves"]}
    assert moves["cleared"] is True
    assert {m["allowed"] for m in as_planner["moves"]} == {False}
    assert as_officer["geometry"]["type"] == "MultiPolygon"


def test_an_unknown_parcel_is_a_404(login, planner, land):
    response = login(planner).get("/api/parcels/999999/")

    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_a_case_officer_moves_a_parcel_of_their_project(login, case_officer, land):
    parcel = land["SC-05"]

    response = login(case_officer).post(
        f"/api/parcels/{parcel.pk}/transition/",
        {"to_status": "cleared", "evidence_ref": "腾空验收单 2026-88"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cleared"
    parcel.refresh_from_db()
    assert parcel.status == Status.CLEARED
    change = parcel.history.get()
    assert (change.actor, change.evidence_ref) == (case_officer, "腾空验收单 2026-88")


def test_moves_are_refused_with_the_services_reasons(
    login, case_officer, case_officer_elsewhere, planner, land
):
    parcel = land["SC-05"]
    url = f"/api/parcels/{parcel.pk}/transition/"

    elsewhere = login(case_officer_elsewhere).post(
        url, {"to_status": "cleared"}, content_type="application/json"
    )
    as_planner = login(planner).post(
        url, {"to_status": "cleared"}, content_type="application/json"
    )
    skipping = login(case_officer).post(
        url, {"to_status": "banked"}, content_type="application/json"
    )
    reopen_without_reason = login(case_officer).post(
        url, {"to_status": "surveyed"}, content_type="application/json"
    )
    unknown = login(case_officer).post(
        url, {"to_status": "gone"}, content_type="application/json"
    )

    assert elsewhere.status_code == 403
    assert as_planner.status_code == 403
    assert skipping.status_code in (400, 403)
    assert reopen_without_reason.status_code == 400
    assert "reason" in reopen_without_reason.json()["error"]["en"]
    assert unknown.status_code == 400
    parcel.refresh_from_db()
    assert parcel.status == Status.SIGNED
    assert not parcel.history.exists()


def test_a_move_needs_a_post(login, case_officer, land):
    parcel = land["SC-05"]

    response = login(case_officer).get(f"/api/parcels/{parcel.pk}/transition/")

    assert response.status_code == 405
    parcel.refresh_from_db()
    assert parcel.status == Status.SIGNED


def test_session_moves_need_the_csrf_token(case_officer, land):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(case_officer)

    response = client.post(
        f"/api/parcels/{land['SC-05'].pk}/transition/",
        {"to_status": "cleared"},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert Parcel.objects.get(code="SC-05").status == Status.SIGNED


def test_a_bulk_move_changes_all_parcels_or_none(login, case_officer, land):
    client = login(case_officer)
    signed = [land[f"SC-0{n}"].pk for n in (4, 5, 6)]

    refused = client.post(
        "/api/parcels/transition/",
        {"parcels": [*signed, "SC-00"], "to_status": "cleared"},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert [r["code"] for r in refused.json()["refused"]] == ["SC-00"]
    assert Parcel.objects.filter(status=Status.CLEARED).count() == 4

    done = client.post(
        "/api/parcels/transition/",
        {"parcels": [signed[0], "SC-05", signed[2]], "to_status": "cleared"},
        content_type="application/json",
    )
    assert done.status_code == 200, done.content
    assert done.json()["changed"] == 3
    assert Parcel.objects.filter(status=Status.CLEARED).count() == 7


def test_a_bulk_move_naming_an_unknown_parcel_changes_nothing(
    login, case_officer, land
):
    response = login(case_officer).post(
        "/api/parcels/transition/",
        {"parcels": ["SC-05", "NO-SUCH"], "to_status": "cleared"},
        content_type="application/json",
    )

    assert response.status_code == 404
    assert "NO-SUCH" in response.json()["error"]["en"]
    assert Parcel.objects.get(code="SC-05").status == Status.SIGNED


def test_scripts_use_a_token(client, land):
    from rest_framework.authtoken.models import Token

    planner = user_with_role(Role.PLANNER, username="script")
    token = Token.objects.create(user=planner)

    with_token = client.get(
        "/api/parcels/?limit=1", HTTP_AUTHORIZATION=f"Token {token}"
    )
    without = client.get("/api/parcels/?limit=1")

    assert with_token.status_code == 200
    assert without.status_code in (401, 403)


def test_users_without_a_role_see_nothing(login, outsider, land):
    for url in ("/api/parcels/", f"/api/parcels/{land['SC-00'].pk}/", "/api/projects/"):
        response = login(outsider).get(url)
        assert response.status_code == 403
        assert response.json()["error"]["zh"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/parcels/?code=GM%00",
        "/api/projects/GM%00/",
        "/api/buildings/?parcel=%00",
        "/tiles/parcels/16/1/1.mvt?project=%00",
    ],
)
def test_a_nul_character_anywhere_is_a_bilingual_400(login, planner, url):
    response = login(planner).get(url)

    assert response.status_code == 400
    assert response.json()["error"]["zh"].endswith("任何取值都不能包含该字符。")


def test_framework_refusals_are_bilingual_too(client, login, planner, land):
    anonymous = client.get("/api/parcels/")
    wrong_method = login(planner).delete("/api/parcels/")

    assert anonymous.status_code in (401, 403)
    assert anonymous.json()["error"]["en"]
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == {
        "zh": "方法 “DELETE” 不被允许。",
        "en": 'Method "DELETE" not allowed.',
    }


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 5000},
        {"limit": [1]},
        {"ordering": 5},
        {"cursor": 5},
        {"crs": 5},
        {"geometry_crs": 5},
        {"project": "a\x00"},
        {"project": {"code": "L6"}},
    ],
)
def test_search_bodies_of_the_wrong_kind_are_400s(login, planner, land, body):
    drawn = {"type": "Point", "coordinates": [113.9, 22.7]}

    response = login(planner).post(
        "/api/parcels/search/", {"intersects": drawn, **body},
        content_type="application/json",
    )  # fmt: skip

    assert response.status_code == 400, response.content
    assert response.json()["error"]["zh"]


@pytest.mark.parametrize(
    "body",
    [
        {"parcels": [True], "to_status": "cleared"},
        {"parcels": ["a\x00"], "to_status": "cleared"},
        {"parcels": ["SC-05"], "to_status": "cleared", "reason": "x\x00"},
        {"parcels": ["SC-05"], "to_status": "banked", "banked_on": 20240101},
        {"parcels": ["SC-05"], "to_status": ["cleared"]},
    ],
)
def test_bulk_move_bodies_of_the_wrong_kind_are_400s(login, registry_admin, land, body):
    response = login(registry_admin).post(
        "/api/parcels/transition/", body, content_type="application/json"
    )

    assert response.status_code in (400, 404), response.content
    assert Parcel.objects.get(code="SC-05").status == Status.SIGNED


def test_a_point_in_the_wrong_axis_order_is_refused(login, planner, land):
    response = login(planner).get("/api/parcels/?point=113.9,22.7&bbox-crs=EPSG:4326")

    assert response.status_code == 400
    assert response.json()["parameter"] == "point"
