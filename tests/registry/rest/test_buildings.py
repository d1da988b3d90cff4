"""The buildings REST API: filters, pages, and owners' data kept to those allowed."""

import json

import pytest

from registry.choices import BuildingStatus, Legality
from tests.factories import BuildingFactory, ParcelFactory


@pytest.fixture
def buildings(project, other_project):
    here = ParcelFactory(code="SC-01", project=project)
    there = ParcelFactory(code="L6-01", project=other_project)
    BuildingFactory(parcel=here, code="SC-01-B1", status=BuildingStatus.SIGNED)
    BuildingFactory(parcel=here, code="SC-01-B2", legality=Legality.PERMITTED)
    BuildingFactory(parcel=there, code="L6-01-B1")


def codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [f["properties"]["code"] for f in json.loads(response.content)["features"]]


def owners(response) -> dict[str, str | None]:
    return {
        f["properties"]["code"]: f["properties"]["owner_group"]
        for f in json.loads(response.content)["features"]
    }


def test_buildings_filter_like_parcels(login, planner, buildings):
    client = login(planner)

    assert codes(client.get("/api/buildings/?project=GM-SC")) == [
        "SC-01-B1",
        "SC-01-B2",
    ]
    assert codes(client.get("/api/buildings/?parcel=L6-01")) == ["L6-01-B1"]
    assert codes(client.get("/api/buildings/?status=signed")) == ["SC-01-B1"]
    assert codes(client.get("/api/buildings/?legality=permitted")) == ["SC-01-B2"]
    assert codes(client.get("/api/buildings/?code_prefix=L6")) == ["L6-01-B1"]


def test_a_point_finds_the_building_under_it(login, planner, buildings):
    from pyproj import Transformer

    from registry.models import Building

    centre = Building.objects.get(code="SC-01-B2").footprint.centroid
    lon, lat = Transformer.from_crs(4547, 4326, always_xy=True).transform(
        centre.x, centre.y
    )

    response = login(planner).get(f"/api/buildings/?point={lon},{lat}")

    assert codes(response) == ["SC-01-B2"]


def test_buildings_page_by_keyset(login, planner, buildings):
    client = login(planner)
    seen, url = [], "/api/buildings/?limit=2&ordering=-code"
    while url:
        body = json.loads(client.get(url).content)
        seen += [f["properties"]["code"] for f in body["features"]]
        url = body["next"]

    assert seen == ["SC-01-B2", "SC-01-B1", "L6-01-B1"]


def test_owner_groups_show_only_in_the_case_officers_project(
    login, case_officer, planner, registry_admin, buildings
):
    assert set(owners(login(planner).get("/api/buildings/")).values()) == {None}
    assert owners(login(case_officer).get("/api/buildings/")) == {
        "L6-01-B1": None,
        "SC-01-B1": "original_villager",
        "SC-01-B2": "original_villager",
    }
    assert None not in owners(login(registry_admin).get("/api/buildings/")).values()


def test_buildings_refuse_a_parcel_ordering(login, planner, buildings):
    response = login(planner).get("/api/buildings/?ordering=area_m2")

    assert response.status_code == 400
    assert response.json()["parameter"] == "ordering"
