"""Factories for registry objects that keep related objects in one project.

Coordinates are EPSG:4547 (CGCS2000 / 3-degree GK CM 114E, metres). Guangming's
centre, lon 113.93 lat 22.76, is at about x 492 811, y 2 517 961 there (checked with
pyproj); every project is a 2.5 km square in the 10 km block x 490 000-500 000,
y 2 510 000-2 520 000 around it. Parcels are small squares laid on a grid inside
their project's boundary, buildings small squares inside their parcel.

Factories write rows directly, as a data migration would; they do not write
status history. Tests that need history create parcels through
``registry.services.parcel_create``.
"""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import MultiPolygon, Polygon
from factory.django import DjangoModelFactory

from registry.choices import (
    PROJECT_ROLES,
    BuildingStatus,
    LandClass,
    Legality,
    OwnerGroup,
    ProjectKind,
    Role,
    Street,
)
from registry.models import Building, Membership, Parcel, Project
from registry.workflow import Status
from spatial.crs import STORAGE_SRID

BLOCK_X, BLOCK_Y = 490_000.0, 2_510_000.0
PROJECT_SIDE = 2_500.0
PROJECTS_PER_ROW = 4
PARCEL_PITCH = 250.0
PARCELS_PER_ROW = 10
PARCEL_MARGIN = 5.0
PASSWORD = "correct horse battery"


def square(x: float, y: float, side: float, srid: int = STORAGE_SRID) -> MultiPolygon:
    """Return the MultiPolygon square with lower-left corner (x, y)."""
    return MultiPolygon(Polygon.from_bbox((x, y, x + side, y + side)), srid=srid)


def project_boundary(n: int) -> MultiPolygon:
    """Return the boundary of the n-th project: one square of a 4 x 4 grid."""
    cell = n % (PROJECTS_PER_ROW * PROJECTS_PER_ROW)
    column, row = cell % PROJECTS_PER_ROW, cell // PROJECTS_PER_ROW
    return square(
        BLOCK_X + column * PROJECT_SIDE, BLOCK_Y + row * PROJECT_SIDE, PROJECT_SIDE
    )


def parcel_square(project: Project | None, n: int, side: float) -> MultiPolygon:
    """Return the n-th parcel square of ``side`` metres inside ``project``."""
    if side > PARCEL_PITCH - PARCEL_MARGIN:
        raise ValueError(f"a factory parcel is at most {PARCEL_PITCH} m wide")
    if project is None:
        x0, y0 = BLOCK_X, BLOCK_Y
    else:
        x0, y0, _x1, _y1 = project.boundary.extent
    cell = n % (PARCELS_PER_ROW * PARCELS_PER_ROW)
    column, row = cell % PARCELS_PER_ROW, cell // PARCELS_PER_ROW
    return square(
        x0 + PARCEL_MARGIN + column * PARCEL_PITCH,
        y0 + PARCEL_MARGIN + row * PARCEL_PITCH,
        side,
    )


def building_square(parcel: Parcel, n: int) -> MultiPolygon:
    """Return a square footprint inside ``parcel``, one of four positions."""
    x0, y0, x1, y1 = parcel.geom.extent
    side = min(x1 - x0, y1 - y0) / 4
    column, row = n % 2, (n // 2) % 2
    return square(
        x0 + side / 2 + column * 2 * side, y0 + side / 2 + row * 2 * side, side
    )


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@guangming.example")
    password = factory.django.Password(PASSWORD)


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    code = factory.Sequence(lambda n: f"P{n:03d}")
    name_zh = factory.Sequence(lambda n: f"测试整备项目{n}")
    name_en = factory.Sequence(lambda n: f"Test consolidation project {n}")
    kind = ProjectKind.INDUSTRIAL
    street = Street.GUANGMING
    boundary = factory.Sequence(project_boundary)
    planned_area_m2 = PROJECT_SIDE * PROJECT_SIDE
    start_date = datetime.date(2024, 1, 1)
    target_date = datetime.date(2025, 12, 31)


class ParcelFactory(DjangoModelFactory):
    """A parcel of ``side`` metres square inside its project (40 m by default).

    ``status`` may be set to any stage; a banked parcel gets a banking date and a
    land bank reference so that the database accepts it.
    """

    class Meta:
        model = Parcel

    class Params:
        side = 40.0
        position = factory.Sequence(lambda n: n)

    code = factory.Sequence(lambda n: f"GM-{n:05d}")
    project = factory.SubFactory(ProjectFactory)
    land_class = LandClass.COLLECTIVE
    status = Status.SURVEYED
    street = factory.LazyAttribute(lambda p: p.project.street if p.project else "")
    geom = factory.LazyAttribute(lambda p: parcel_square(p.project, p.position, p.side))
    banked_on = factory.LazyAttribute(
        lambda p: datetime.date(2025, 6, 30) if p.status == Status.BANKED else None
    )
    bank_ref = factory.LazyAttribute(
        lambda p: f"LB-2025-{p.code}" if p.status == Status.BANKED else ""
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        parcel = super()._create(model_class, *args, **kwargs)
        # area_m2 is computed by PostgreSQL; read it back like any other reader.
        parcel.refresh_from_db(fields=["area_m2"])
        return parcel


class BuildingFactory(DjangoModelFactory):
    """A building standing inside its parcel (and so in the parcel's project)."""

    class Meta:
        model = Building

    class Params:
        position = factory.Sequence(lambda n: n)

    code = factory.Sequence(lambda n: f"B-{n:06d}")
    parcel = factory.SubFactory(ParcelFactory)
    footprint = factory.LazyAttribute(lambda b: building_square(b.parcel, b.position))
    floors = 3
    floor_area_m2 = 300.0
    legality = Legality.HISTORICAL_LEGACY
    owner_group = OwnerGroup.ORIGINAL_VILLAGER
    status = BuildingStatus.UNSIGNED


class MembershipFactory(DjangoModelFactory):
    """A role; project-scoped roles get a project unless one is given."""

    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.PLANNER
    project = factory.Maybe(
        factory.LazyAttribute(lambda m: m.role in PROJECT_ROLES),
        yes_declaration=factory.SubFactory(ProjectFactory),
        no_declaration=None,
    )


def user_with_role(role: Role, project: Project | None = None, **user_fields):
    """Return a new user holding ``role`` (in ``project`` for project roles)."""
    user = UserFactory(**user_fields)
    if role in PROJECT_ROLES:
        MembershipFactory(user=user, role=role, project=project or ProjectFactory())
    else:
        if project is not None:
            raise ValueError(f"{role} is a district-wide role and has no project")
        MembershipFactory(user=user, role=role)
    return user
