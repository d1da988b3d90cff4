"""Which import batches a user may see."""

from django.db.models import QuerySet

from importers.models import ImportBatch
from registry import access
from registry.choices import Role


def batches_visible_to(user) -> QuerySet[ImportBatch]:
    """Return the batches of projects the user imports into (all, for admins).

    Reports show sample rows, which may carry owners' names: they are for the
    project's surveyors and registry admins only.
    """
    batches = ImportBatch.objects.select_related("project", "created_by")
    grants = access.grants_of(user)
    if grants.is_registry_admin:
        return batches
    projects = [pid for pid, roles in grants.projects.items() if Role.SURVEYOR in roles]
    return batches.filter(project_id__in=projects)
