"""Admin view of orthophotos: read and delete, never add or edit.

Orthophotos come in only through ``imagery.orthophoto_ingest`` (the upload page),
which checks and converts the file; editing a row could make it name another
file or lie about its CRS. Deleting goes through ``imagery.orthophoto_delete``
so that the COG goes with its row.
"""

from django.contrib import admin

from registry.admin import RegistryAdminOnly, admin_site
from tilesvc import imagery
from tilesvc.models import Orthophoto


@admin.register(Orthophoto, site=admin_site)
class OrthophotoAdmin(RegistryAdminOnly, admin.ModelAdmin):
    list_display = [
        "pk", "title", "project", "state", "captured_on", "resolution_m", "width",
        "height",
        "band_count", "size_bytes", "uploaded_by", "uploaded_at",
    ]  # fmt: skip
    list_filter = ["project", "state"]
    search_fields = ["title", "source_name", "sha256", "source_sha256"]
    list_select_related = ["project", "uploaded_by"]
    readonly_fields = [
        "project", "title", "source_name", "uploaded_by", "uploaded_at", "state",
        "progress", "stage", "failure", "upload", "converted_at",
        "captured_on", "file", "source_crs", "footprint", "resolution_m", "width",
        "height", "band_count", "size_bytes", "sha256", "source_sha256",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj):
        imagery.orthophoto_delete(orthophoto=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for orthophoto in queryset:
            imagery.orthophoto_delete(orthophoto=orthophoto, actor=request.user)
