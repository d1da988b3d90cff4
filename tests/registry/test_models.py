"""Invariants the database itself keeps, whoever writes: raw SQL included."""

import pytest
import shapely
from django.db import DatabaseError, IntegrityError, connection, transaction
from pyproj import Geod, Transformer
from shapely import wkt

from registry import services
from registry.choices import BuildingStatus, LandClass, Role
from registry.models import BuildingStatusChange, Membership, ParcelStatusChange
from spatial.area import geodesic_area_m2
from tests.factories import (
    BuildingFactory,
    ParcelFactory,
    UserFactory,
    parcel_square,
)

pytestmark = pytest.mark.django_db

# A five-sided parcel about 300 m across near Guangming's centre, in EPSG:4547.
PENTAGON = wkt.loads(
    "MULTIPOLYGON(((492500 2517800, 492790 2517760, 492850 2518010,"
    " 492640 2518120, 492470 2518030, 492500 2517800)))"
)
# The same parcel moved 1 km east and stretched: a different area.
BIGGER = wkt.loads(
    "MULTIPOLYGON(((493500 2517800, 493890 2517760, 493950 2518110,"
    " 493640 2518220, 493470 2518030, 493500 2517800)))"
)
BOWTIE = (
    "MULTIPOLYGON(((492000 2517000, 492100 2517100, 492100 2517000,"
    " 492000 2517100, 492000 2517000)))"
)


def independent_geodesic_area(shape) -> float:
    """Compute the area on the GRS80 ellipsoid, from longitude and latitude."""
    to_lonlat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    lonlat = shapely.transform(shape, to_lonlat.transform, interleaved=False)
    area, _perimeter = Geod(ellps="GRS80").geometry_area_perimeter(lonlat)
    return abs(area)


def insert_parcel(**values):
    """Insert a parcel row with raw SQL, as ``psql`` or a bulk ``COPY`` would."""
    row = {
        "code": "GM-RAW-0001",
        "land_class": "collective",
        "status": "surveyed",
        "street": "",
        "geom": parcel_square(None, 0, 40).wkt,
        "banked_on": None,
        "bank_ref": "",
        **values,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO registry_parcel
                (code, land_class, status, street, geom, banked_on, bank_ref,
                 synthetic, created_at, updated_at)
            VALUES (%s, %s, %s, %s, ST_GeomFromText(%s, 4547), %s, %s,
                    false, now(), now())
            RETURNING id
            """,
            [
                row["code"],
                row["land_class"],
                row["status"],
                row["street"],
                row["geom"],
                row["banked_on"],
                row["bank_ref"],
            ],
        )
        return cursor.fetchone()[0]


def refused_by(constraint: str, write, *args, **kwargs):
    """Assert the database refuses the write, naming ``constraint``."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write(*args, **kwargs)
    assert caught.value.__cause__.diag.constraint_name == constraint
    assert constraint in str(caught.value)


def area_of(parcel_id: int) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT area_m2 FROM registry_parcel WHERE id = %s", [parcel_id])
        return cursor.fetchone()[0]


# -- parcels -------------------------------------------------------------------------


def test_a_valid_parcel_row_is_accepted():
    parcel_id = insert_parcel()

    assert area_of(parcel_id) == pytest.approx(1_600.0)


def test_it_refuses_a_self_intersecting_geometry():
    assert not shapely.is_valid(wkt.loads(BOWTIE))

    refused_by("parcel_geom_valid", insert_parcel, geom=BOWTIE)


def test_it_refuses_an_empty_geometry():
    refused_by("parcel_geom_not_empty", insert_parcel, geom="MULTIPOLYGON EMPTY")


def test_it_refuses_a_geometry_made_invalid_by_an_update():
    parcel = ParcelFactory()

    def update():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE registry_parcel SET geom = ST_GeomFromText(%s, 4547)"
                " WHERE id = %s",
                [BOWTIE, parcel.pk],
            )

    refused_by("parcel_geom_valid", update)


def test_it_refuses_an_unknown_land_class():
    refused_by("parcel_land_class_known", insert_parcel, land_class="industrial")


def test_it_refuses_an_unknown_status():
    refused_by("parcel_status_known", insert_parcel, status="approved")


def test_it_refuses_an_unknown_street():
    refused_by("parcel_street_known", insert_parcel, street="nanshan")


@pytest.mark.parametrize(
    ("banked_on", "bank_ref"),
    [("2025-06-30", ""), (None, "LB-2025-0042"), (None, "")],
)
def test_it_refuses_a_banked_parcel_without_date_and_reference(banked_on, bank_ref):
    refused_by(
        "parcel_banked_has_reference",
        insert_parcel,
        status="banked",
        banked_on=banked_on,
        bank_ref=bank_ref,
    )


def test_it_accepts_a_banked_parcel_with_date_and_reference():
    insert_parcel(status="banked", banked_on="2025-06-30", bank_ref="LB-2025-0042")


def test_it_refuses_a_duplicate_parcel_code():
    insert_parcel(code="GM-SC-0001")

    refused_by(
        "parcel_code_unique",
        insert_parcel,
        code="GM-SC-0001",
        geom=parcel_square(None, 1, 40).wkt,
    )


def test_area_is_the_geodesic_area_of_the_geometry():
    parcel_id = insert_parcel(geom=PENTAGON.wkt)

    stored = area_of(parcel_id)
    independent = independent_geodesic_area(PENTAGON)
    assert independent == pytest.approx(geodesic_area_m2(PENTAGON), rel=1e-9)
    assert stored == pytest.approx(independent, rel=1e-4)
    assert stored == pytest.approx(PENTAGON.area, rel=1e-9)


def test_area_follows_the_geometry_when_it_is_updated():
    parcel_id = insert_parcel(geom=PENTAGON.wkt)

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_parcel SET geom = ST_GeomFromText(%s, 4547) WHERE id = %s",
            [BIGGER.wkt, parcel_id],
        )

    assert independent_geodesic_area(BIGGER) > 1.2 * independent_geodesic_area(PENTAGON)
    assert area_of(parcel_id) == pytest.approx(
        independent_geodesic_area(BIGGER), rel=1e-4
    )


def test_area_cannot_be_written_by_hand():
    parcel_id = insert_parcel()

    with pytest.raises(DatabaseError, match="area_m2"), transaction.atomic():
        execute("UPDATE registry_parcel SET area_m2 = 1 WHERE id = %s", [parcel_id])
    assert area_of(parcel_id) == pytest.approx(1_600.0)


def test_a_parcel_saved_through_the_orm_gets_its_area_from_the_database():
    parcel = ParcelFactory(side=120)

    assert parcel.area_m2 == pytest.approx(14_400.0)


# -- buildings -----------------------------------------------------------------------


def test_it_refuses_an_invalid_building_footprint():
    building = BuildingFactory()

    def update():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE registry_building SET footprint = ST_GeomFromText(%s, 4547)"
                " WHERE id = %s",
                [BOWTIE, building.pk],
            )

    refused_by("building_footprint_valid", update)


def test_it_refuses_a_duplicate_building_code():
    building = BuildingFactory()

    refused_by(
        "building_code_unique",
        BuildingFactory,
        code=building.code,
        parcel=building.parcel,
    )


def test_it_refuses_an_unknown_building_status():
    refused_by("building_status_known", BuildingFactory, status="burnt")


# -- history -------------------------------------------------------------------------


@pytest.fixture
def history_row(project, surveyor, case_officer):
    parcel = services.parcel_create(
        code="GM-SC-H-0001",
        land_class=LandClass.COLLECTIVE,
        geom=parcel_square(project, 0, 40),
        actor=surveyor,
        project=project,
    )
    services.parcel_transition(parcel=parcel, to_status="declared", actor=case_officer)
    return ParcelStatusChange.objects.get(parcel=parcel, to_status="declared")


@pytest.fixture
def building_history_row(project, case_officer):
    building = BuildingFactory(parcel=ParcelFactory(project=project))
    services.building_set_status(
        building=building, to_status=BuildingStatus.SIGNED, actor=case_officer
    )
    return BuildingStatusChange.objects.get(building=building)


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_parcel_history_cannot_be_rewritten(history_row, outsider):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(
            "UPDATE registry_parcelstatuschange SET actor_id = %s, reason = 'x'"
            " WHERE id = %s",
            [outsider.pk, history_row.pk],
        )

    history_row.refresh_from_db()
    assert history_row.actor.username == "case_officer"
    assert history_row.reason == ""


def test_parcel_history_cannot_be_deleted(history_row):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(
            "DELETE FROM registry_parcelstatuschange WHERE id = %s", [history_row.pk]
        )

    assert ParcelStatusChange.objects.filter(pk=history_row.pk).exists()


def test_parcel_history_cannot_be_deleted_through_the_orm(history_row):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ParcelStatusChange.objects.filter(pk=history_row.pk).delete()

    assert ParcelStatusChange.objects.filter(pk=history_row.pk).exists()


def test_building_history_cannot_be_rewritten_or_deleted(building_history_row):
    pk = building_history_row.pk
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(
            "UPDATE registry_buildingstatuschange SET to_status = 'demolished'"
            " WHERE id = %s",
            [pk],
        )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute("DELETE FROM registry_buildingstatuschange WHERE id = %s", [pk])

    assert BuildingStatusChange.objects.get(pk=pk).to_status == "signed"


def test_history_may_be_deleted_when_the_transaction_allows_it(history_row):
    parcel = history_row.parcel

    with transaction.atomic():
        execute("SET LOCAL registry.allow_history_delete = 'on'")
        execute(
            "DELETE FROM registry_parcelstatuschange WHERE parcel_id = %s", [parcel.pk]
        )

    assert not ParcelStatusChange.objects.filter(parcel=parcel).exists()


def test_the_delete_permission_is_not_an_update_permission(history_row):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute("SET LOCAL registry.allow_history_delete = 'on'")
        execute(
            "UPDATE registry_parcelstatuschange SET reason = 'x' WHERE id = %s",
            [history_row.pk],
        )


@pytest.mark.django_db(transaction=True)
def test_the_delete_permission_ends_with_its_transaction(history_row):
    parcel = history_row.parcel
    create = ParcelStatusChange.objects.get(parcel=parcel, move="create")

    with transaction.atomic():
        execute("SET LOCAL registry.allow_history_delete = 'on'")
        execute(
            "DELETE FROM registry_parcelstatuschange WHERE id = %s", [history_row.pk]
        )

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute("DELETE FROM registry_parcelstatuschange WHERE id = %s", [create.pk])
    assert list(ParcelStatusChange.objects.filter(parcel=parcel)) == [create]


def test_a_reopen_without_reason_is_refused_by_the_database(history_row):
    def insert_reopen():
        ParcelStatusChange.objects.create(
            parcel=history_row.parcel,
            move="reopen",
            from_status="declared",
            to_status="surveyed",
            actor=history_row.actor,
            at=history_row.at,
            reason="",
        )

    refused_by("parcelstatuschange_reopen_has_reason", insert_reopen)


def test_only_a_creation_has_no_previous_status(history_row):
    def insert_advance_from_nowhere():
        ParcelStatusChange.objects.create(
            parcel=history_row.parcel,
            move="advance",
            from_status="",
            to_status="verified",
            actor=history_row.actor,
            at=history_row.at,
        )

    refused_by("parcelstatuschange_from_matches_move", insert_advance_from_nowhere)


# -- memberships ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SURVEYOR, Role.CASE_OFFICER])
def test_a_project_role_needs_a_project(role):
    refused_by(
        "membership_project_matches_role",
        Membership.objects.create,
        user=UserFactory(),
        role=role,
        project=None,
    )


@pytest.mark.parametrize("role", [Role.PLANNER, Role.ANALYST, Role.REGISTRY_ADMIN])
def test_a_district_role_has_no_project(role, project):
    refused_by(
        "membership_project_matches_role",
        Membership.objects.create,
        user=UserFactory(),
        role=role,
        project=project,
    )


def test_it_refuses_an_unknown_role():
    refused_by(
        "membership_role_known",
        Membership.objects.create,
        user=UserFactory(),
        role="mayor",
    )


def test_a_district_role_is_held_once(planner):
    refused_by(
        "membership_unique", Membership.objects.create, user=planner, role=Role.PLANNER
    )


def test_a_project_role_is_held_once_per_project(case_officer, project, other_project):
    refused_by(
        "membership_unique",
        Membership.objects.create,
        user=case_officer,
        role=Role.CASE_OFFICER,
        project=project,
    )
    Membership.objects.create(
        user=case_officer, role=Role.CASE_OFFICER, project=other_project
    )
