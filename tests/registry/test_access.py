"""Who may do what: roles come from memberships, read afresh on every question."""

import pytest
from django.contrib.auth.models import AnonymousUser

from registry import access
from registry.choices import Role
from registry.models import Membership
from registry.workflow import Status
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = [
    "outsider",
    "surveyor",
    "case_officer",
    "case_officer_elsewhere",
    "planner",
    "analyst",
    "registry_admin",
]


@pytest.fixture
def persona(request):
    return lambda name: request.getfixturevalue(name)


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        ("outsider", set()),
        ("surveyor", {Role.SURVEYOR}),
        ("case_officer", {Role.CASE_OFFICER}),
        ("planner", {Role.PLANNER}),
        ("analyst", {Role.ANALYST}),
        ("registry_admin", {Role.REGISTRY_ADMIN}),
    ],
)
def test_roles_of_each_persona(name, roles, persona):
    assert access.roles_of(persona(name)) == roles


def test_an_anonymous_visitor_has_no_role_and_reads_nothing():
    visitor = AnonymousUser()

    assert access.roles_of(visitor) == set()
    assert not access.can_read_registry(visitor)
    assert not access.can_change_status(visitor, None, "surveyed", "declared")


def test_a_superuser_counts_as_a_registry_admin():
    root = UserFactory(is_superuser=True, is_staff=True)

    assert access.is_registry_admin(root)
    assert access.can_change_status(root, None, Status.CLEARED, Status.BANKED)


def test_staff_status_alone_grants_nothing():
    staff = UserFactory(is_staff=True)

    assert not access.is_registry_admin(staff)
    assert not access.can_read_registry(staff)


def test_a_deactivated_user_loses_every_role(registry_admin):
    registry_admin.is_active = False
    registry_admin.save()

    assert access.roles_of(registry_admin) == set()
    assert not access.is_registry_admin(registry_admin)


def test_a_revoked_membership_takes_effect_at_once(case_officer, project):
    assert access.can_change_status(case_officer, project, "surveyed", "declared")

    Membership.objects.filter(user=case_officer).delete()

    assert not access.can_change_status(case_officer, project, "surveyed", "declared")
    assert not access.can_read_registry(case_officer)


@pytest.mark.parametrize(
    ("name", "may_read"),
    [(name, name != "outsider") for name in PERSONAS],
)
def test_every_role_may_read_the_registry(name, may_read, persona):
    assert access.can_read_registry(persona(name)) is may_read


def test_case_officers_move_parcels_of_their_project_up_to_cleared(
    case_officer, project, other_project
):
    for current, target in [
        ("surveyed", "declared"),
        ("signed", "cleared"),
        ("cleared", "surveyed"),
    ]:
        assert access.can_change_status(case_officer, project, current, target)
        assert access.can_change_status(case_officer, project.pk, current, target)
        assert not access.can_change_status(
            case_officer, other_project, current, target
        )
    assert not access.can_change_status(case_officer, project, "cleared", "banked")
    assert not access.can_change_status(case_officer, project, "banked", "cleared")
    assert not access.can_change_status(case_officer, None, "surveyed", "declared")


@pytest.mark.parametrize("name", ["surveyor", "planner", "analyst", "outsider"])
def test_other_roles_move_no_parcel(name, persona, project):
    assert not access.can_change_status(persona(name), project, "surveyed", "declared")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("registry_admin", True),
        ("case_officer", True),
        ("case_officer_elsewhere", False),
        ("surveyor", False),
        ("planner", False),
        ("analyst", False),
        ("outsider", False),
    ],
)
def test_who_may_change_buildings_and_see_owners(name, allowed, persona, project):
    user = persona(name)

    assert access.can_change_buildings(user, project) is allowed
    assert access.can_view_owner_data(user, project) is allowed


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("registry_admin", True),
        ("surveyor", True),
        ("case_officer", False),
        ("planner", False),
        ("analyst", False),
        ("outsider", False),
    ],
)
def test_who_may_import_survey_data(name, allowed, persona, project, other_project):
    user = persona(name)

    assert access.can_import(user, project) is allowed
    assert access.can_import(user, other_project) is (name == "registry_admin")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [(name, name in {"analyst", "registry_admin"}) for name in PERSONAS],
)
def test_only_analysts_and_admins_export(name, allowed, persona):
    assert access.can_export(persona(name)) is allowed
