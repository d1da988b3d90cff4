"""App configuration of the registry domain."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    """The registry: projects, parcels, buildings, their history and roles."""

    name = "registry"
    verbose_name = _("Land consolidation registry")
