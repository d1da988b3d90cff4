"""The surveyors' import pages: upload, follow the check, commit or undo."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import (
    require_http_methods,
    require_POST,
    require_safe,
)

from importers import pipeline, tasks
from importers.encoding import SOURCE_LABELS
from importers.forms import RecheckForm, UploadForm
from importers.mapping import TARGET_LABELS, source_key
from importers.models import ImportBatch, SavedMapping
from importers.selectors import batches_visible_to
from registry import access
from registry.errors import RegistryError


def _batch_for(request, pk: int) -> ImportBatch:
    batch = get_object_or_404(ImportBatch.objects.select_related("project"), pk=pk)
    if not access.can_import(request.user, batch.project):
        raise PermissionDenied
    return batch


@require_safe
def batch_list(request):
    """List the import batches the user may see."""
    projects = access.importable_projects(request.user)
    if not projects.exists():
        raise PermissionDenied
    batches = batches_visible_to(request.user)[:200]
    return render(request, "importers/batch_list.html", {"batches": batches})


@require_http_methods(["GET", "POST"])
def upload(request):
    """Take a survey file and queue its check."""
    projects = access.importable_projects(request.user)
    if not projects.exists():
        raise PermissionDenied
    form = UploadForm(request.POST or None, request.FILES or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            batch = tasks.submit(
                data["file"],
                project=data["project"],
                actor=request.user,
                options=pipeline.Options.chosen(data),
                commit=False,
            )
        except RegistryError as error:
            form.add_error("file", error.bilingual)
        else:
            return redirect("importers:batch", pk=batch.pk)
    return render(request, "importers/upload.html", {"form": form})


@require_safe
def batch_detail(request, pk: int):
    """Show a batch: progress while it runs, then its full report."""
    batch = _batch_for(request, pk)
    report = batch.report or {}
    running = batch.state in (
        ImportBatch.State.QUEUED,
        ImportBatch.State.CHECKING,
        ImportBatch.State.COMMITTING,
    )
    return render(
        request,
        "importers/batch_detail.html",
        {
            "batch": batch,
            "report": report,
            "running": running,
            "recheck_form": RecheckForm(initial=_recheck_initial(batch)),
            "encoding_source": SOURCE_LABELS.get(
                batch.encoding_source, batch.encoding_source
            ),
            "mapping_rows": [
                (TARGET_LABELS.get(target, target), source)
                for target, source in (report.get("mapping") or {})
                .get("fields", {})
                .items()
            ],
            "can_undo": batch.state == ImportBatch.State.COMMITTED
            and access.is_registry_admin(request.user),
        },
    )


@require_POST
def batch_commit(request, pk: int):
    """Queue the commit of a checked batch."""
    batch = _batch_for(request, pk)
    if batch.state != ImportBatch.State.CHECKED:
        messages.error(request, _("Only a checked, accepted batch can be committed."))
    else:
        with transaction.atomic():
            tasks.enqueue(batch, commit=True, actor=request.user)
    return redirect("importers:batch", pk=batch.pk)


@require_POST
def batch_recheck(request, pk: int):
    """Check the same upload again with other options, as a new batch."""
    batch = _batch_for(request, pk)
    form = RecheckForm(request.POST)
    if not form.is_valid():
        return redirect("importers:batch", pk=batch.pk)
    data = form.cleaned_data
    options = dict(batch.options)
    options.update(
        encoding=data["encoding"] or None,
        crs=data["crs"] or None,
        land_class=data["land_class"] or None,
        repair=data["repair"],
        valid_only=data["valid_only"],
    )
    fields = {
        target: data[f"{target}_field"]
        for target in ("code", "land_class", "declared_area")
        if data[f"{target}_field"]
    }
    # New field choices keep the value mappings the batch was read with.
    values = (batch.mapping or {}).get("values", {})
    options["mapping"] = (
        {"layer": batch.layer, "fields": fields, "values": values} if fields else None
    )
    try:
        with transaction.atomic():
            again = pipeline.new_batch(
                path=pipeline.Path(batch.upload_path),
                name=batch.file_name,
                project=batch.project,
                actor=request.user,
                options=pipeline.Options(**options),
            )
            tasks.enqueue(again, commit=False)
    except (RegistryError, FileNotFoundError):
        messages.error(request, _("The uploaded file is no longer available."))
        return redirect("importers:batch", pk=batch.pk)
    return redirect("importers:batch", pk=again.pk)


@require_POST
def batch_undo(request, pk: int):
    """Undo a committed batch (registry admins only)."""
    batch = _batch_for(request, pk)
    if not access.is_registry_admin(request.user):
        raise PermissionDenied
    try:
        pipeline.undo(batch, actor=request.user)
    except RegistryError as error:
        messages.error(request, error.bilingual)
    else:
        messages.success(request, _("The import was undone."))
    return redirect("importers:batch", pk=batch.pk)


@require_POST
def save_mapping(request, pk: int):
    """Save the batch's field mapping for later files with the same fields."""
    batch = _batch_for(request, pk)
    name = request.POST.get("name", "").strip()[:100]
    fields = (batch.report or {}).get("fields")
    if not name or not fields or not batch.mapping:
        messages.error(request, _("Give the mapping a name."))
    else:
        SavedMapping.objects.update_or_create(
            project=batch.project,
            name=name,
            layer=batch.layer,
            defaults={
                "source_key": source_key(fields),
                "mapping": batch.mapping,
                "created_by": request.user,
            },
        )
        messages.success(request, _("Mapping saved."))
    return redirect("importers:batch", pk=batch.pk)


def _recheck_initial(batch: ImportBatch) -> dict:
    options, fields = batch.options or {}, (batch.mapping or {}).get("fields", {})
    return {
        "encoding": options.get("encoding") or "",
        "crs": options.get("crs") or "",
        "land_class": options.get("land_class") or "",
        "code_field": fields.get("code", ""),
        "land_class_field": fields.get("land_class", ""),
        "declared_area_field": fields.get("declared_area", ""),
        "repair": options.get("repair", False),
        "valid_only": options.get("valid_only", False),
    }
