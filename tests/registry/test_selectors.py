"""The figures analysts report: cleared, uncleared and banked land, and parcel lists."""

import pytest
from django.contrib.gis.geos import Polygon
from pyproj import Transformer

from registry.selectors import (
    AreaSummary,
    parcel_list,
    project_area_summary,
    project_overview,
)
from tests.factories import ParcelFactory, ProjectFactory

pytestmark = pytest.mark.django_db

COLLECTIVE, STATE_FARM, UNFINISHED = (
    "collective",
    "state_farm",
    "unfinished_expropriation",
)


@pytest.fixture
def land(project, other_project):
    """Parcels of known area: a square of side s metres has s² m²."""
    parcels = {}
    for code, project_, land_class, status, side in [
        ("SC-01", project, COLLECTIVE, "surveyed", 100),  # 10 000
        ("SC-02", project, COLLECTIVE, "signed", 50),  # 2 500
        ("SC-03", project, COLLECTIVE, "cleared", 60),  # 3 600
        ("SC-04", project, COLLECTIVE, "banked", 80),  # 6 400
        ("SC-05", project, STATE_FARM, "cleared", 70),  # 4 900
        ("SC-06", project, STATE_FARM, "verified", 30),  # 900
        ("SC-07", project, UNFINISHED, "banked", 40),  # 1 600
        ("L6-01", other_project, COLLECTIVE, "cleared", 90),  # 8 100
        ("XX-01", None, COLLECTIVE, "declared", 20),  # 400
    ]:
        parcels[code] = ParcelFactory(
            code=code,
            project=project_,
            land_class=land_class,
            status=status,
            side=side,
        )
    return parcels


def figures(summary: AreaSummary) -> tuple:
    return (
        summary.parcels,
        round(summary.area_m2, 3),
        round(summary.cleared_m2, 3),
        round(summary.uncleared_m2, 3),
        round(summary.banked_m2, 3),
    )


def test_cleared_land_counts_cleared_and_banked_parcels(land, project):
    by_class = project_area_summary()[project.pk]

    # parcels, area, cleared (cleared + banked), uncleared (the rest), banked
    assert figures(by_class[COLLECTIVE]) == (4, 22_500, 10_000, 12_500, 6_400)
    assert figures(by_class[STATE_FARM]) == (2, 5_800, 4_900, 900, 0)
    assert figures(by_class[UNFINISHED]) == (1, 1_600, 1_600, 0, 1_600)
    assert figures(by_class[None]) == (7, 29_900, 16_500, 13_400, 8_000)


def test_cleared_and_uncleared_add_up_to_the_whole(land):
    for by_class in project_area_summary().values():
        for summary in by_class.values():
            assert summary.cleared_m2 + summary.uncleared_m2 == pytest.approx(
                summary.area_m2
            )
            assert summary.banked_m2 <= summary.cleared_m2


def test_each_project_has_its_own_figures(land, project, other_project):
    summary = project_area_summary()

    assert set(summary) == {project.pk, other_project.pk, None}
    assert figures(summary[other_project.pk][None]) == (1, 8_100, 8_100, 0, 0)
    assert set(summary[other_project.pk]) == {COLLECTIVE, None}
    assert figures(summary[None][None]) == (1, 400, 0, 400, 0)


def test_the_summary_can_be_limited_to_some_projects(land, project, other_project):
    summary = project_area_summary(projects=type(project).objects.filter(pk=project.pk))

    assert set(summary) == {project.pk}


def test_cleared_share_is_the_cleared_fraction(land, project):
    total = project_area_summary()[project.pk][None]

    assert total.cleared_share == pytest.approx(16_500 / 29_900)
    assert AreaSummary(0, 0.0, 0.0, 0.0, 0.0).cleared_share == 0.0


def test_the_summary_follows_the_workflow(land, project):
    parcel = land["SC-01"]
    parcel.status = "cleared"
    parcel.save()

    total = project_area_summary()[project.pk][None]

    assert (total.cleared_m2, total.uncleared_m2) == pytest.approx((26_500, 3_400))


def test_the_overview_lists_every_project_even_without_parcels(land, project):
    empty = ProjectFactory(code="ZZ-EMPTY")

    overview = project_overview()

    assert [p.code for p, _total, _by_class in overview] == [
        "GM-L6",
        "GM-SC",
        "ZZ-EMPTY",
    ]
    by_code = {p.code: (total, by_class) for p, total, by_class in overview}
    total, by_class = by_code[empty.code]
    assert figures(total) == (0, 0, 0, 0, 0)
    assert set(by_class) == {COLLECTIVE, STATE_FARM, UNFINISHED}
    total, by_class = by_code[project.code]
    assert figures(total) == (7, 29_900, 16_500, 13_400, 8_000)
    assert figures(by_class[UNFINISHED]) == (1, 1_600, 1_600, 0, 1_600)


# -- parcel_list -----------------------------------------------------------------


def codes(parcels) -> list[str]:
    return [p.code for p in parcels]


def test_parcel_list_without_filters_lists_every_parcel_by_code(land):
    assert codes(parcel_list()) == sorted(land)


def test_parcel_list_filters_by_project(land, project, other_project):
    assert codes(parcel_list(project=other_project)) == ["L6-01"]
    assert codes(parcel_list(project=project)) == [f"SC-0{n}" for n in range(1, 8)]


def test_parcel_list_filters_by_land_class(land):
    assert codes(parcel_list(land_class=STATE_FARM)) == ["SC-05", "SC-06"]


def test_parcel_list_filters_by_status(land):
    assert codes(parcel_list(status="cleared")) == ["L6-01", "SC-03", "SC-05"]
    assert codes(parcel_list(status="banked")) == ["SC-04", "SC-07"]


def test_parcel_list_combines_filters(land, project):
    assert codes(
        parcel_list(project=project, land_class=COLLECTIVE, status="banked")
    ) == ["SC-04"]
    assert codes(parcel_list(project=project, status="declared")) == []


def test_empty_filters_are_no_filters(land):
    assert codes(parcel_list(land_class="", status="")) == sorted(land)


def test_parcel_list_filters_by_a_box_in_storage_coordinates(land):
    x0, y0, x1, y1 = land["SC-03"].geom.extent
    box = Polygon.from_bbox((x0 + 1, y0 + 1, x1 - 1, y1 - 1))
    box.srid = 4547

    assert codes(parcel_list(intersecting=box)) == ["SC-03"]


def test_parcel_list_filters_by_a_box_in_longitude_and_latitude(land):
    x0, y0, x1, y1 = land["SC-05"].geom.extent
    to_lonlat = Transformer.from_crs(4547, 4326, always_xy=True)
    lon0, lat0 = to_lonlat.transform(x0 + 5, y0 + 5)
    lon1, lat1 = to_lonlat.transform(x1 - 5, y1 - 5)
    box = Polygon.from_bbox((lon0, lat0, lon1, lat1))
    box.srid = 4326

    assert codes(parcel_list(intersecting=box)) == ["SC-05"]


def test_parcel_list_with_a_box_away_from_every_parcel_is_empty(land):
    box = Polygon.from_bbox((113.5, 22.3, 113.6, 22.4))
    box.srid = 4326

    assert codes(parcel_list(intersecting=box)) == []
