"""The test data itself: in Guangming, and each object inside its container."""

import itertools

import pytest
from pyproj import Transformer

from registry.choices import Role
from registry.models import Membership
from tests.factories import (
    BuildingFactory,
    MembershipFactory,
    ParcelFactory,
    ProjectFactory,
    user_with_role,
)

pytestmark = pytest.mark.django_db

TO_LONLAT = Transformer.from_crs(4547, 4326, always_xy=True)


def test_projects_lie_in_guangming():
    for project in ProjectFactory.create_batch(16):
        assert project.boundary.srid == 4547
        x, y = project.boundary.centroid.coords
        lon, lat = TO_LONLAT.transform(x, y)
        assert 113.85 < lon < 114.02
        assert 22.66 < lat < 22.80


def test_guangming_centre_is_where_the_factories_put_it():
    to_4547 = Transformer.from_crs(4326, 4547, always_xy=True)

    x, y = to_4547.transform(113.93, 22.76)

    assert 490_000 < x < 500_000
    assert 2_510_000 < y < 2_520_000


def test_parcels_lie_inside_their_project_and_buildings_inside_their_parcel():
    project = ProjectFactory()
    parcels = ParcelFactory.create_batch(12, project=project, side=200)
    buildings = [BuildingFactory(parcel=parcels[0]) for _ in range(4)]

    for parcel in parcels:
        assert project.boundary.contains(parcel.geom)
        assert parcel.area_m2 == pytest.approx(40_000)
    for a, b in itertools.combinations(parcels, 2):
        assert not a.geom.intersects(b.geom)
    for building in buildings:
        assert parcels[0].geom.contains(building.footprint)
        assert building.parcel.project == project


def test_a_building_brings_its_parcel_and_project():
    building = BuildingFactory()

    assert building.parcel.project.boundary.contains(building.footprint)


def test_banked_parcels_get_a_date_and_a_reference():
    parcel = ParcelFactory(status="banked")

    assert parcel.banked_on is not None
    assert parcel.bank_ref


def test_user_with_role_scopes_project_roles_only():
    project = ProjectFactory()

    officer = user_with_role(Role.CASE_OFFICER, project)
    planner = user_with_role(Role.PLANNER)

    assert list(
        Membership.objects.filter(user=officer).values_list("project", flat=True)
    ) == [project.pk]
    assert Membership.objects.get(user=planner).project is None
    with pytest.raises(ValueError, match="district-wide"):
        user_with_role(Role.ANALYST, project)


def test_a_surveyor_membership_gets_a_project_by_default():
    assert MembershipFactory(role=Role.SURVEYOR).project is not None
    assert MembershipFactory(role=Role.ANALYST).project is None
