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
    """API tokens for scripts and GIS clients; deleting one revokes it.

    The list says who has a token and since when, not the keys: a key an
    administrator could read would let them act as its user, in that user's
    name in the audit trail. Users make their own (``registry.tokens``); a
    token is not added or handed to another user here. (A token's name is its
    key, so its own page and the delete confirmation still show that one.)
    """

    list_display = ["user", "created"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
