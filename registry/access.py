"""Who may do what: roles, their projects, and the questions views and services ask.

Roles come from ``Membership`` rows; a Django superuser counts as a registry admin
so that ``createsuperuser`` yields a working administrator. Every function takes the
user (or the ``Grants`` read for them) explicitly. Nothing is cached on a user
object that outlives its request (the token authenticator keeps the roles it read
with the user on that request's own user object), so a revoked membership takes
effect on the next request.
"""

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext_lazy as _

from registry.choices import Role
from registry.errors import PermissionRefused
from registry.models import Membership, Project
from registry.workflow import Status

User = AbstractBaseUser | AnonymousUser

# Case officers carry parcels up to "cleared"; banking is for registry admins.
CASE_OFFICER_STATUSES = frozenset(
    {Status.SURVEYED, Status.DECLARED, Status.VERIFIED, Status.SIGNED, Status.CLEARED}
)


@dataclass(frozen=True)
class Grants:
    """Every role one user holds, read in one query.

    Pass a ``Grants`` instead of the user to the functions below when asking many
    questions at once (a bulk change of a thousand parcels asks a thousand).
    """

    district: frozenset[Role] = frozenset()
    projects: dict[int, frozenset[Role]] = field(default_factory=dict)

    def roles(self) -> set[Role]:
        """Return every role held, district-wide or in any project."""
        return set(self.district).union(*self.projects.values())

    def holds(self, role: Role, project: Project | int | None) -> bool:
        """Return whether ``role`` is held in ``project`` (project roles only)."""
        if project is None:
            return False
        project_id = project.pk if isinstance(project, Project) else project
        return role in self.projects.get(project_id, frozenset())

    @property
    def is_registry_admin(self) -> bool:
        """Return whether these grants administer the whole registry."""
        return Role.REGISTRY_ADMIN in self.district


def grants_of(user: User | Grants) -> Grants:
    """Return the user's grants (or the grants given)."""
    if isinstance(user, Grants):
        return user
    if not user.is_authenticated or not user.is_active:
        return Grants()
    kept = getattr(user, _KEPT, None)
    if kept is not None:
        return kept
    rows = Membership.objects.filter(user=user).values_list("role", "project_id")
    return grants_from_rows(user, rows)


def grants_from_rows(user: User, rows) -> Grants:
    """Return the grants of ``user`` from its (role, project id) memberships."""
    district, projects = set(), {}
    for role, project_id in rows:
        if project_id is None:
            district.add(Role(role))
        else:
            projects.setdefault(project_id, set()).add(Role(role))
    if user.is_superuser:
        district.add(Role.REGISTRY_ADMIN)
    return Grants(
        frozenset(district), {pid: frozenset(roles) for pid, roles in projects.items()}
    )


# Where an authenticator that read the roles with the user keeps them, on a user
# object made for one request only (registry.token_auth).
_KEPT = "_registry_grants_for_this_request"


def keep_for_request(user: User, grants: Grants) -> None:
    """Keep ``grants`` on a user object that lives for one request only."""
    setattr(user, _KEPT, grants)


def roles_of(user: User | Grants) -> set[Role]:
    """Return every role the user holds, in any project."""
    return grants_of(user).roles()


def is_registry_admin(user: User | Grants) -> bool:
    """Return whether the user administers the whole registry."""
    return grants_of(user).is_registry_admin


def has_project_role(
    user: User | Grants, role: Role, project: Project | int | None
) -> bool:
    """Return whether the user holds ``role`` in ``project``."""
    return grants_of(user).holds(role, project)


def can_read_registry(user: User | Grants) -> bool:
    """Return whether the user may see parcels, projects and maps at all."""
    return bool(roles_of(user))


def refuse_unless_reader(user: User | Grants) -> None:
    """Refuse a user who holds no role in the registry (the APIs' first check)."""
    if not can_read_registry(user):
        raise PermissionRefused(
            _("You hold no role in the registry; ask an administrator.")
        )


def can_change_status(
    user: User | Grants, project: Project | int | None, from_status: str, to_status: str
) -> bool:
    """Return whether the user may move a parcel of ``project`` between statuses."""
    grants = grants_of(user)
    if grants.is_registry_admin:
        return True
    within_reach = {Status(from_status), Status(to_status)} <= CASE_OFFICER_STATUSES
    return within_reach and grants.holds(Role.CASE_OFFICER, project)


def can_change_buildings(user: User | Grants, project: Project | int | None) -> bool:
    """Return whether the user may record signing, vacating or demolition."""
    grants = grants_of(user)
    return grants.is_registry_admin or grants.holds(Role.CASE_OFFICER, project)


def can_import(user: User | Grants, project: Project | int | None) -> bool:
    """Return whether the user may import survey data into ``project``."""
    grants = grants_of(user)
    return grants.is_registry_admin or grants.holds(Role.SURVEYOR, project)


def importable_projects(user: User | Grants):
    """Return the projects the user may import survey data into, by code."""
    grants = grants_of(user)
    projects = Project.objects.order_by("code")
    if grants.is_registry_admin:
        return projects
    return projects.filter(
        pk__in=[pid for pid in grants.projects if grants.holds(Role.SURVEYOR, pid)]
    )


def can_export(user: User | Grants) -> bool:
    """Return whether the user may export parcels as files."""
    return bool(roles_of(user) & {Role.ANALYST, Role.REGISTRY_ADMIN})


def can_view_owner_data(user: User | Grants, project: Project | int | None) -> bool:
    """Return whether the user may see owners' personal data in ``project``."""
    grants = grants_of(user)
    return grants.is_registry_admin or grants.holds(Role.CASE_OFFICER, project)


def owner_data_projects(user: User | Grants) -> list[int] | None:
    """Return the ids of the projects whose owners' data the user may see.

    None means every project (registry admins); an empty list means none.
    """
    grants = grants_of(user)
    if grants.is_registry_admin:
        return None
    return sorted(pk for pk in grants.projects if can_view_owner_data(grants, pk))
