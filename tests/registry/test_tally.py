"""The database's running tally equals a count of the parcels, whoever writes."""

import pytest
from django.db import connection
from django.utils import timezone

from registry import resurvey, services, statistics
from registry.choices import LandClass
from registry.models import Parcel, ParcelTally
from registry.tasks import compact_tally
from registry.workflow import Status
from tests.factories import ParcelFactory, parcel_square


def counted() -> list[tuple]:
    """Return the cells as a GROUP BY over every parcel computes them.

    Areas compare to 1 cm²: the tally adds areas kept to 0.1 mm², a sum of
    floats rounds differently in the last digit.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pr.code, p.land_class, p.status, p.street, count(*),
                   sum(p.area_m2)
            FROM registry_parcel p LEFT JOIN registry_project pr ON pr.id = p.project_id
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """
        )
        return [(*row[:5], pytest.approx(row[5], abs=0.01)) for row in cursor]


def tallied() -> list[tuple]:
    return [
        (c.project, c.land_class, c.status, c.street, c.parcels, c.area_m2)
        for c in statistics.area_cells()
    ]


def test_the_tally_follows_inserts_updates_and_deletes(
    project, other_project, case_officer, surveyor, registry_admin
):
    parcels = [ParcelFactory(project=project, side=10 + n) for n in range(5)]
    ParcelFactory(project=None, side=30, land_class=LandClass.STATE_FARM)
    assert tallied() == counted()

    services.parcel_transition(
        parcel=parcels[0], to_status=Status.DECLARED, actor=case_officer
    )
    services.parcel_transition_bulk(
        parcels=parcels[1:3], to_status=Status.DECLARED, actor=case_officer
    )
    assert tallied() == counted()

    # An import re-surveys one parcel (its area changes) and creates another.
    resurvey.survey_apply(
        project=project,
        parcels=resurvey.SurveyedParcels(
            codes=[parcels[4].code, "NEW-1"],
            land_classes=[LandClass.COLLECTIVE] * 2,
            declared_areas=[None, None],
            ewkb=[
                parcel_square(project, 4, 55.0).ewkb.hex(),
                parcel_square(project, 40, 20.0).ewkb.hex(),
            ],
        ),
        actor=surveyor,
        import_batch_id=11,
        at=timezone.now(),
    )
    assert tallied() == counted()

    resurvey.survey_undo(import_batch_id=11, actor=registry_admin, at=timezone.now())
    assert tallied() == counted()
    Parcel.objects.filter(project=None).update(land_class=LandClass.COLLECTIVE)
    assert tallied() == counted()


def test_a_status_change_appends_one_row_per_cell_not_per_parcel(project, case_officer):
    parcels = [ParcelFactory(project=project) for _ in range(20)]
    before = ParcelTally.objects.count()

    services.parcel_transition_bulk(
        parcels=parcels, to_status=Status.DECLARED, actor=case_officer
    )

    # Out of "surveyed", into "declared": two cells, two rows.
    assert ParcelTally.objects.count() - before == 2


def test_compacting_keeps_every_figure(project, case_officer):
    parcels = [ParcelFactory(project=project, side=10 + n) for n in range(6)]
    for parcel in parcels[:4]:
        services.parcel_transition(
            parcel=parcel, to_status=Status.DECLARED, actor=case_officer
        )
    figures = tallied()
    rows = ParcelTally.objects.count()

    removed = compact_tally(timestamp=0)

    assert tallied() == figures == counted()
    assert ParcelTally.objects.count() == rows - removed == 2


@pytest.mark.django_db(transaction=True)
def test_truncating_the_parcels_empties_the_tally(project):
    ParcelFactory(project=project)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE registry_parcel CASCADE")
    assert tallied() == counted() == []
