"""The registry's admin site: every model, for registry administrators only.

The admin never writes ``status`` itself. A parcel's status is changed through the
"change status" fields of its form, which call ``parcel_transition``; buildings move
through admin actions that call ``building_set_status``; new parcels are created by
``parcel_create``, which writes their first history row. History is read-only.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Group, User
from django.contrib.auth.views import redirect_to_login
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from registry import access, audit, changes, services
from registry.choices import BuildingStatus
from registry.errors import RegistryError
from registry.models import (
    AuditAction,
    AuditRecord,
    Building,
    BuildingStatusChange,
    ExportLog,
    Membership,
    Parcel,
    ParcelRevision,
    ParcelStatusChange,
    Project,
)
from registry.widgets import OfflineMapWidget
from registry.workflow import TRANSITIONS, Status


class RegistryAdminSite(admin.AdminSite):
    """Admin site open to registry administrators, logged in through the app."""

    site_header = _("Guangming land consolidation registry")
    site_title = _("Land registry administration")
    index_title = _("Registry administration")

    def has_permission(self, request) -> bool:
        """Admit registry administrators only (not merely ``is_staff`` users)."""
        return access.is_registry_admin(request.user)

    @method_decorator(login_not_required)
    def login(self, request, extra_context=None):
        """Log in through the application's page; refuse logged-in non-admins.

        A registry admin who is already logged in goes on to where they were
        going. Redirecting a logged-in user who lacks the role back to the login
        page would loop, so they get 403 instead.
        """
        index = reverse("admin:index", current_app=self.name)
        target = request.GET.get("next") or index
        if not url_has_allowed_host_and_scheme(
            target,
            allowed_hosts={request.get_host()},
            require_https=request.is_secure(),
        ):
            target = index
        if not request.user.is_authenticated:
            return redirect_to_login(target)
        if self.has_permission(request):
            return HttpResponseRedirect(target)
        raise PermissionDenied


admin_site = RegistryAdminSite(name="admin")


class RegistryAdminOnly:
    """Grant every admin permission from the registry-admin role, not Django perms."""

    def has_module_permission(self, request) -> bool:
        return access.is_registry_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return access.is_registry_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return access.is_registry_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return access.is_registry_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return access.is_registry_admin(request.user)


class HistoryAdmin(RegistryAdminOnly, admin.ModelAdmin):
    """Read-only view of an append-only history table."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MapAdmin(RegistryAdminOnly, GISModelAdmin):
    """GIS admin whose map widget works without internet access.

    Saving announces the object's old and new place, so that cached map tiles
    of both are drawn afresh.
    """

    gis_widget = OfflineMapWidget
    announce = None  # one of registry.changes.announce_*
    geometry_field = None  # audited when an edit changes it
    audit_kind = ""

    def save_model(self, request, obj, form, change):
        if self.announce is None:
            return super().save_model(request, obj, form, change)
        if change:
            self.announce([obj.pk])
        super().save_model(request, obj, form, change)
        self.announce([obj.pk])
        if change and self.geometry_field in form.changed_data:
            self.record_geometry_change(request, obj, form)
        return None

    def record_geometry_change(self, request, obj, form) -> None:
        """Record an edit of the object's geometry in the audit trail."""
        before = form.initial.get(self.geometry_field)
        after = getattr(obj, self.geometry_field)
        audit.record(
            AuditAction.GEOMETRY_CHANGE,
            kind=self.audit_kind,
            object_id=obj.pk,
            code=obj.code,
            project=self.project_of(obj),
            actor=request.user,
            changes={
                "field": self.geometry_field,
                "area_m2": {
                    "from": round(before.area, 2) if before else None,
                    "to": round(after.area, 2),
                },
            },
        )

    def project_of(self, obj):
        """Return the project the object belongs to, for the audit record."""
        return None


@admin.register(Project, site=admin_site)
class ProjectAdmin(MapAdmin):
    announce = staticmethod(changes.announce_projects)
    geometry_field, audit_kind = "boundary", "project"

    def project_of(self, obj):
        return obj

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            # Parcel and building tiles carry the project's code.
            changes.announce_project_land([obj.pk])

    def delete_model(self, request, obj):
        changes.announce_projects([obj.pk])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        changes.announce_projects(list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)

    list_display = ["code", "name_zh", "name_en", "kind", "street", "planned_area_m2"]
    list_filter = ["kind", "street", "synthetic"]
    search_fields = ["code", "name_zh", "name_en"]


class ParcelAdminForm(forms.ModelForm):
    """Parcel form with a status change that goes through the workflow service."""

    new_status = forms.ChoiceField(
        label=_("Change status to"), required=False, choices=[("", "—")]
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when reopening to an earlier stage."),
    )
    evidence_ref = forms.CharField(label=_("Evidence reference"), required=False)
    new_banked_on = forms.DateField(label=_("Banked on"), required=False)
    new_bank_ref = forms.CharField(label=_("Land bank reference"), required=False)

    class Meta:
        model = Parcel
        fields = ["code", "project", "land_class", "street", "geom", "declared_area_m2"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if self.instance.pk:
            allowed = TRANSITIONS[Status(self.instance.status)]
            self.fields["new_status"].choices = [("", "—")] + [
                (s.value, f"{s.label} ({move.label})") for s, move in allowed.items()
            ]
        else:
            for name in (
                "new_status",
                "reason",
                "evidence_ref",
                "new_banked_on",
                "new_bank_ref",
            ):
                del self.fields[name]

    def clean(self):
        """Explain a refused status change on the form, before anything is saved."""
        cleaned = super().clean()
        target = cleaned.get("new_status")
        if self.instance.pk and target:
            refusal = services.transition_refusal(
                parcel=self.instance,
                to_status=target,
                actor=self.user,
                reason=cleaned.get("reason", ""),
                banked_on=cleaned.get("new_banked_on"),
                bank_ref=cleaned.get("new_bank_ref", ""),
            )
            if refusal is not None:
                raise forms.ValidationError(refusal.bilingual)
        return cleaned


@admin.register(Parcel, site=admin_site)
class ParcelAdmin(MapAdmin):
    form = ParcelAdminForm
    list_display = ["code", "project", "land_class", "status", "street", "area_m2"]
    list_filter = ["project", "land_class", "status", "street", "synthetic"]
    search_fields = ["code", "bank_ref"]
    list_select_related = ["project"]
    readonly_fields = [
        "status",
        "area_m2",
        "banked_on",
        "bank_ref",
        "created_at",
        "updated_at",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)

        class FormWithUser(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return FormWithUser

    def get_fieldsets(self, request, obj=None):
        main = (
            None,
            {
                "fields": [
                    "code",
                    "project",
                    "land_class",
                    "street",
                    "geom",
                    "declared_area_m2",
                    "area_m2",
                ]
            },
        )
        if obj is None:
            return [main]
        return [
            main,
            (
                _("Workflow"),
                {
                    "fields": [
                        "status",
                        "banked_on",
                        "bank_ref",
                        "new_status",
                        "reason",
                        "evidence_ref",
                        "new_banked_on",
                        "new_bank_ref",
                    ]
                },
            ),
            (_("Record"), {"fields": ["created_at", "updated_at"]}),
        ]

    def save_model(self, request, obj, form, change):
        """Create through ``parcel_create``; change status through the workflow."""
        data = form.cleaned_data
        if not change:
            created = services.parcel_create(
                code=obj.code,
                land_class=obj.land_class,
                geom=obj.geom,
                actor=request.user,
                project=obj.project,
                street=obj.street,
                declared_area_m2=obj.declared_area_m2,
            )
            obj.pk = created.pk
            return
        # Only the editable model fields: status never comes from a (stale) form.
        # The service keeps a replaced geometry as a revision, records the edit
        # and announces where the parcel is now.
        changes.announce_parcels([obj.pk])  # where it was
        services.parcel_edit(parcel=obj, actor=request.user)
        changes.announce_buildings_on([obj.pk])  # they show its code and project
        if data.get("new_status"):
            services.parcel_transition(
                parcel=obj,
                to_status=data["new_status"],
                actor=request.user,
                reason=data.get("reason", ""),
                evidence_ref=data.get("evidence_ref", ""),
                banked_on=data.get("new_banked_on"),
                bank_ref=data.get("new_bank_ref", ""),
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Parcels carry evidence; they are never deleted through the app.
        return False


def _building_action(target: BuildingStatus):
    def action(modeladmin, request, queryset):
        done = 0
        for building in queryset.order_by("pk"):
            try:
                services.building_set_status(
                    building=building, to_status=target, actor=request.user
                )
                done += 1
            except RegistryError as error:
                modeladmin.message_user(request, error.bilingual, messages.ERROR)
        if done:
            modeladmin.message_user(
                request,
                _("%(count)s building(s) marked “%(status)s”.")
                % {"count": done, "status": target.label},
                messages.SUCCESS,
            )

    action.__name__ = f"mark_{target.value}"
    action.short_description = _("Mark selected buildings “%(status)s”") % {
        "status": target.label
    }
    return action


@admin.register(Building, site=admin_site)
class BuildingAdmin(MapAdmin):
    announce = staticmethod(changes.announce_buildings)
    geometry_field, audit_kind = "footprint", "building"

    def project_of(self, obj):
        return obj.parcel.project_id

    list_display = [
        "code",
        "parcel",
        "floors",
        "floor_area_m2",
        "legality",
        "owner_group",
        "status",
    ]
    list_filter = [
        "parcel__project",
        "parcel__land_class",
        "status",
        "legality",
        "owner_group",
    ]
    search_fields = ["code", "parcel__code"]
    raw_id_fields = ["parcel"]
    readonly_fields = ["status"]
    actions = [
        _building_action(BuildingStatus.SIGNED),
        _building_action(BuildingStatus.VACATED),
        _building_action(BuildingStatus.DEMOLISHED),
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ParcelStatusChange, site=admin_site)
class ParcelStatusChangeAdmin(HistoryAdmin):
    list_display = ["parcel", "move", "from_status", "to_status", "actor", "at"]
    list_filter = ["parcel__project", "parcel__land_class", "to_status", "move"]
    search_fields = ["parcel__code", "reason", "evidence_ref"]
    date_hierarchy = "at"
    list_select_related = ["parcel", "actor"]


@admin.register(ParcelRevision, site=admin_site)
class ParcelRevisionAdmin(HistoryAdmin):
    list_display = ["parcel", "kind", "import_batch_id", "actor", "at"]
    list_filter = ["kind", "parcel__project"]
    search_fields = ["parcel__code"]
    list_select_related = ["parcel", "actor"]


@admin.register(BuildingStatusChange, site=admin_site)
class BuildingStatusChangeAdmin(HistoryAdmin):
    list_display = ["building", "from_status", "to_status", "actor", "at"]
    list_filter = ["building__parcel__project", "to_status"]
    search_fields = ["building__code"]
    list_select_related = ["building", "actor"]


@admin.register(ExportLog, site=admin_site)
class ExportLogAdmin(HistoryAdmin):
    list_display = ["at", "user", "format", "channel", "features", "total_area_m2"]
    list_filter = ["format", "channel"]
    search_fields = ["user__username", "sha256"]


@admin.register(AuditRecord, site=admin_site)
class AuditRecordAdmin(HistoryAdmin):
    """The audit trail, read-only: nobody adds, changes or deletes a record."""

    list_display = [
        "at",
        "actor_username",
        "action",
        "object_kind",
        "object_code",
        "project_code",
        "channel",
        "remote_addr",
    ]
    list_filter = ["action", "channel", "object_kind"]
    search_fields = ["actor_username", "object_code", "project_code"]
    date_hierarchy = "at"


@admin.register(Membership, site=admin_site)
class MembershipAdmin(RegistryAdminOnly, admin.ModelAdmin):
    list_display = ["user", "role", "project"]
    list_filter = ["role", "project"]
    search_fields = ["user__username"]


@admin.register(User, site=admin_site)
class RegistryUserAdmin(RegistryAdminOnly, UserAdmin):
    pass


@admin.register(Group, site=admin_site)
class RegistryGroupAdmin(RegistryAdminOnly, GroupAdmin):
    pass
