"""App configuration of the registry domain."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    """The registry: projects, parcels, buildings, their history and roles."""

    name = "registry"
    verbose_name = _("Land consolidation registry")

    def ready(self) -> None:
        """Connect the audit trail's receivers (roles, accounts, tokens, exports)."""
        from registry import audit  # noqa: F401
