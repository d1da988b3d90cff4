"""Admin views of import batches, saved mappings and API tokens."""

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from importers.models import ImportBatch, SavedMapping
from registry.admin import HistoryAdmin, RegistryAdminOnly, admin_site


@admin.register(ImportBatch, site=admin_site)
class ImportBatchAdmin(HistoryAdmin):
    list_display = [
        "pk", "file_name", "project", "layer", "state", "features", "created",
        "updated", "unchanged", "rejected", "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["project", "layer", "state"]
    search_fields = ["file_name", "sha256"]
    list_select_related = ["project", "created_by"]


@admin.register(SavedMapping, site=admin_site)
class SavedMappingAdmin(RegistryAdminOnly, admin.ModelAdmin):
    list_display = ["name", "layer", "created_by", "created_at"]
    list_filter = ["layer"]
    search_fields = ["name"]


@admin.register(TokenProxy, site=admin_site)
class RegistryTokenAdmin(RegistryAdminOnly, TokenAdmin):
    """API tokens for scripts and GIS clients; deleting one revokes it."""
