"""Progress statistics, now and as of past dates, checked against the history."""

import datetime
import random
from collections import defaultdict

import pytest
import time_machine
from django.contrib.gis.geos import MultiPolygon, Polygon

from registry import services, statistics
from registry.models import Parcel, ParcelStatusChange
from registry.selectors import project_area_summary
from registry.workflow import ORDER, Status
from tests.factories import ParcelFactory, parcel_square

pytestmark = pytest.mark.django_db
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def at(day: int, month: int = 1, year: int = 2025) -> datetime.datetime:
    return datetime.datetime(year, month, day, 10, 0, tzinfo=SHANGHAI)


def test_current_cells_agree_with_the_project_area_summary(project, registry_admin):
    for n, status in enumerate([Status.SURVEYED, Status.CLEARED, Status.BANKED]):
        ParcelFactory(
            project=project,
            status=status,
            banked_on=datetime.date(2025, 1, 1) if status == Status.BANKED else None,
            bank_ref="RK-1" if status == Status.BANKED else "",
            geom=parcel_square(project, n, 50 + 10 * n),
        )
    cells = statistics.area_cells()
    mine = statistics.summarise(cells, project=project.code)
    reference = project_area_summary()[project.pk][None]
    assert mine.parcels == reference.parcels == 3
    assert mine.area_m2 == pytest.approx(reference.area_m2)
    assert mine.cleared_m2 == pytest.approx(reference.cleared_m2)
    assert mine.uncleared_m2 == pytest.approx(reference.uncleared_m2)
    assert mine.banked_m2 == pytest.approx(reference.banked_m2)


def test_as_of_a_date_parcels_have_the_status_they_had_then(project, registry_admin):
    with time_machine.travel(at(1), tick=False):
        parcel = services.parcel_create(
            code="AS-OF-1",
            land_class="collective",
            geom=parcel_square(project, 0, 40),
            actor=registry_admin,
            project=project,
        )
    with time_machine.travel(at(10), tick=False):
        services.parcel_transition(
            parcel=parcel, to_status=Status.DECLARED, actor=registry_admin
        )

    before_creation = statistics.area_cells(as_of=at(1) - datetime.timedelta(days=1))
    between = statistics.area_cells(as_of=at(5))
    after = statistics.area_cells(as_of=at(20))

    assert before_creation == []
    assert [(c.project, c.status, c.parcels) for c in between] == [
        (project.code, "surveyed", 1)
    ]
    assert [(c.status, c.area_m2) for c in after] == [("declared", pytest.approx(1600))]


def test_as_of_before_a_resurvey_the_old_geometry_counts(project, registry_admin):
    from registry.resurvey import SurveyedParcels, survey_apply

    def survey(side: float, when):
        with time_machine.travel(when, tick=False):
            geom = MultiPolygon(
                Polygon.from_bbox((492000, 2517000, 492000 + side, 2517000 + side)),
                srid=4547,
            )
            survey_apply(
                project=project,
                parcels=SurveyedParcels(
                    ["RS-1"], ["collective"], [None], [geom.hexewkb.decode()]
                ),
                actor=registry_admin,
                import_batch_id=1,
                at=when,
            )

    survey(30, at(1))
    survey(40, at(10))

    assert statistics.area_cells(as_of=at(5))[0].area_m2 == pytest.approx(900)
    assert statistics.area_cells(as_of=at(20))[0].area_m2 == pytest.approx(1600)
    assert statistics.area_cells()[0].area_m2 == pytest.approx(1600)


def test_banked_area_per_month_and_cumulatively(project, registry_admin):
    parcels = []
    for n in range(3):
        parcel = ParcelFactory(
            project=project, status=Status.CLEARED, geom=parcel_square(project, n, 100)
        )
        parcels.append(parcel)
    for parcel, month in zip(parcels, (1, 1, 3), strict=True):
        with time_machine.travel(at(15, month), tick=False):
            services.parcel_transition(
                parcel=parcel,
                to_status=Status.BANKED,
                actor=registry_admin,
                banked_on=at(15, month).date(),
                bank_ref=f"RK-2025-{month:02d}",
            )
    with time_machine.travel(at(20, 4), tick=False):
        services.parcel_transition(
            parcel=parcels[0],
            to_status=Status.CLEARED,
            actor=registry_admin,
            reason="Bank entry annulled",
        )

    rows = statistics.banked_over_time(period="month", until=at(30, 12))

    assert [(r[0].month, r[1], r[2], r[3]) for r in rows] == [
        (1, pytest.approx(20_000), 0.0, pytest.approx(20_000)),
        (3, pytest.approx(10_000), 0.0, pytest.approx(30_000)),
        (4, 0.0, pytest.approx(10_000), pytest.approx(20_000)),
    ]
    quarters = statistics.banked_over_time(period="quarter", until=at(30, 12))
    assert [(q[0].month, q[3]) for q in quarters] == [
        (1, pytest.approx(30_000)),
        (4, pytest.approx(20_000)),
    ]


def test_as_of_figures_equal_an_independent_replay_of_the_history(
    project, registry_admin
):
    # Random histories: 40 parcels, each moved forward (and sometimes reopened)
    # at random moments; then the figures at several dates are recomputed in
    # Python from the history rows alone and compared.
    rng = random.Random(20261201)
    for n in range(40):
        moment = at(1) + datetime.timedelta(hours=rng.randint(0, 2000))
        with time_machine.travel(moment, tick=False):
            parcel = services.parcel_create(
                code=f"RND-{n:03d}",
                land_class=rng.choice(["collective", "state_farm"]),
                geom=parcel_square(project, n, 20 + n),
                actor=registry_admin,
                project=project,
            )
        for _ in range(rng.randint(0, 7)):
            moment += datetime.timedelta(hours=rng.randint(1, 500))
            current = Status(Parcel.objects.get(pk=parcel.pk).status)
            index = ORDER.index(current)
            if index and rng.random() < 0.2:
                target, reason = ORDER[index - 1], "random reopen"
            elif index + 1 < len(ORDER):
                target, reason = ORDER[index + 1], ""
            else:
                break
            with time_machine.travel(moment, tick=False):
                services.parcel_transition(
                    parcel=parcel,
                    to_status=target,
                    actor=registry_admin,
                    reason=reason,
                    banked_on=moment.date(),
                    bank_ref="RK-RANDOM",
                )
    areas = dict(Parcel.objects.values_list("pk", "area_m2"))
    history = list(
        ParcelStatusChange.objects.order_by("at", "pk").values_list(
            "parcel_id", "to_status", "at"
        )
    )
    for days in (0, 20, 45, 90, 200):
        moment = at(1) + datetime.timedelta(days=days)
        status_then = {}
        for parcel_id, status, when in history:
            if when <= moment:
                status_then[parcel_id] = status
        expected = defaultdict(float)
        for parcel_id, status in status_then.items():
            expected[status] += areas[parcel_id]
        actual = defaultdict(float)
        for cell in statistics.area_cells(as_of=moment):
            actual[cell.status] += cell.area_m2
        assert set(actual) == set(expected), days
        for status, area in expected.items():
            assert actual[status] == pytest.approx(area), (days, status)


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("planner", 200),
        ("analyst", 200),
        ("registry_admin", 200),
        ("case_officer", 200),
        ("outsider", 403),
    ],
)
def test_who_reads_the_statistics_api(persona, status, request, login):
    client = login(request.getfixturevalue(persona))
    assert client.get("/api/statistics/progress/").status_code == status
    assert client.get("/api/statistics/banked/").status_code == status


def test_anonymous_visitors_get_no_statistics(client):
    assert client.get("/api/statistics/progress/").status_code in (401, 403)


def test_the_statistics_api_reports_projects_and_the_district(project, planner, login):
    ParcelFactory(
        project=project, status=Status.CLEARED, geom=parcel_square(project, 0, 100)
    )
    body = login(planner).get("/api/statistics/progress/").json()
    assert body["district"]["cleared_m2"] == pytest.approx(10_000)
    assert body["district"]["district_area_km2"] == 156.1
    [mine] = [p for p in body["projects"] if p["code"] == project.code]
    assert mine["cleared_m2"] == pytest.approx(10_000)


@pytest.mark.parametrize("bad", ["garbage", "2025-13-45", "2025-02-30T10:00"])
def test_a_bad_as_of_is_a_400_that_says_why(bad, planner, login):
    response = login(planner).get("/api/statistics/progress/", {"as_of": bad})
    assert response.status_code == 400
    assert "as_of" in response.json()["error"]["en"]
    assert "as_of" in response.json()["error"]["zh"]


def test_a_date_as_of_means_the_end_of_that_day(
    project, registry_admin, planner, login
):
    with time_machine.travel(at(1).replace(hour=18), tick=False):
        services.parcel_create(
            code="EOD-1",
            land_class="collective",
            geom=parcel_square(project, 0, 10),
            actor=registry_admin,
            project=project,
        )
    body = (
        login(planner).get("/api/statistics/progress/", {"as_of": "2025-01-01"}).json()
    )
    assert body["district"]["parcels"] == 1
