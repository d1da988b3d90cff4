"""The projects REST API: area figures from the one selector that defines them."""

import pytest

from registry.choices import LandClass
from registry.selectors import project_area_summary
from registry.workflow import Status
from tests.factories import ParcelFactory


@pytest.fixture
def land(project, other_project):
    ParcelFactory(project=project, side=40, status=Status.CLEARED)
    ParcelFactory(project=project, side=30, status=Status.BANKED)
    ParcelFactory(
        project=project, side=20, status=Status.SIGNED, land_class=LandClass.STATE_FARM
    )
    ParcelFactory(project=other_project, side=10, status=Status.SURVEYED)


def test_projects_list_their_cleared_uncleared_and_banked_area(login, planner, land):
    response = login(planner).get("/api/projects/")

    assert response.status_code == 200
    by_code = {p["code"]: p for p in response.json()}
    science_city = by_code["GM-SC"]
    assert science_city["name"] == "光明科学城启动区"
    totals = science_city["totals"]
    assert totals["parcels"] == 3
    assert totals["cleared_m2"] == pytest.approx(1600 + 900, abs=0.01)
    assert totals["uncleared_m2"] == pytest.approx(400, abs=0.01)
    assert totals["banked_m2"] == pytest.approx(900, abs=0.01)
    state_farm = science_city["by_land_class"]["state_farm"]
    assert state_farm["uncleared_m2"] == pytest.approx(400, abs=0.01)
    assert science_city["by_land_class"]["unfinished_expropriation"]["parcels"] == 0
    assert by_code["GM-L6"]["totals"]["cleared_m2"] == 0


def test_project_figures_equal_the_selectors(login, planner, project, land):
    detail = login(planner).get(f"/api/projects/{project.code}/").json()

    summary = project_area_summary()[project.pk]
    for land_class, figures in detail["by_land_class"].items():
        expected = summary.get(land_class)
        if expected is None:
            assert figures["parcels"] == 0
            continue
        assert figures["cleared_m2"] == pytest.approx(expected.cleared_m2, abs=0.01)
        assert figures["banked_m2"] == pytest.approx(expected.banked_m2, abs=0.01)
    assert detail["boundary"]["type"] == "MultiPolygon"
    lon, lat = detail["boundary"]["coordinates"][0][0][0]
    assert 113.7 < lon < 114.1 and 22.6 < lat < 22.9


def test_an_unknown_project_is_a_bilingual_404(login, planner, land):
    response = login(planner).get("/api/projects/NOPE/")

    assert response.status_code == 404
    assert response.json()["error"]["zh"] == "不存在项目 NOPE。"
