"""Who may do what: roles, their projects, and the questions views and services ask.

Roles come from ``Membership`` rows; a Django superuser counts as a registry admin
so that ``createsuperuser`` yields a working administrator. Every function takes the
user explicitly and reads the database; nothing here is cached on the user object,
so a revoked membership takes effect on the next request.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from registry.choices import Role
from registry.models import Membership, Project
from registry.workflow import Status

User = AbstractBaseUser | AnonymousUser

# Case officers carry parcels up to "cleared"; banking is for registry admins.
CASE_OFFICER_STATUSES = frozenset(
    {Status.SURVEYED, Status.DECLARED, Status.VERIFIED, Status.SIGNED, Status.CLEARED}
)


def roles_of(user: User) -> set[Role]:
    """Return every role the user holds, in any project."""
    if not user.is_authenticated or not user.is_active:
        return set()
    roles = {
        Role(r)
        for r in Membership.objects.filter(user=user).values_list("role", flat=True)
    }
    if user.is_superuser:
        roles.add(Role.REGISTRY_ADMIN)
    return roles


def is_registry_admin(user: User) -> bool:
    """Return whether the user administers the whole registry."""
    return Role.REGISTRY_ADMIN in roles_of(user)


def has_project_role(user: User, role: Role, project: Project | int | None) -> bool:
    """Return whether the user holds ``role`` in ``project``."""
    if project is None or not user.is_authenticated or not user.is_active:
        return False
    project_id = project.pk if isinstance(project, Project) else project
    return Membership.objects.filter(
        user=user, role=role, project_id=project_id
    ).exists()


def can_read_registry(user: User) -> bool:
    """Return whether the user may see parcels, projects and maps at all."""
    return bool(roles_of(user))


def can_change_status(
    user: User, project: Project | int | None, from_status: str, to_status: str
) -> bool:
    """Return whether the user may move a parcel of ``project`` between statuses."""
    if is_registry_admin(user):
        return True
    within_reach = {Status(from_status), Status(to_status)} <= CASE_OFFICER_STATUSES
    return within_reach and has_project_role(user, Role.CASE_OFFICER, project)


def can_change_buildings(user: User, project: Project | int | None) -> bool:
    """Return whether the user may record signing, vacating or demolition."""
    return is_registry_admin(user) or has_project_role(user, Role.CASE_OFFICER, project)


def can_import(user: User, project: Project | int | None) -> bool:
    """Return whether the user may import survey data into ``project``."""
    return is_registry_admin(user) or has_project_role(user, Role.SURVEYOR, project)


def can_export(user: User) -> bool:
    """Return whether the user may export parcels as files."""
    return bool(roles_of(user) & {Role.ANALYST, Role.REGISTRY_ADMIN})


def can_view_owner_data(user: User, project: Project | int | None) -> bool:
    """Return whether the user may see owners' personal data in ``project``."""
    return is_registry_admin(user) or has_project_role(user, Role.CASE_OFFICER, project)
