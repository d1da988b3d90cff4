"""The import REST API: the same core as the page and the command, for scripts.

``POST /api/imports/`` takes a multipart upload and answers 202 with the queued
batch; poll ``GET /api/imports/{id}/`` for progress and the report. Authenticate
with a token (``Authorization: Token …``) or a browser session.
"""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from importers import pipeline, tasks
from importers.errors import BatchNotReady
from importers.models import ImportBatch
from importers.selectors import batches_visible_to
from registry import access
from registry.choices import LandClass
from registry.errors import NotFound, PermissionRefused
from registry.models import Project


class BatchSerializer(serializers.ModelSerializer):
    """A batch as the API shows it."""

    project = serializers.SlugRelatedField(slug_field="code", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "project",
            "layer",
            "state",
            "progress",
            "stage",
            "file_name",
            "sha256",
            "size_bytes",
            "source_format",
            "source_layer",
            "encoding",
            "encoding_source",
            "crs",
            "mapping",
            "options",
            "features",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "error",
            "created_by",
            "created_at",
            "committed_at",
            "undone_at",
            "report",
        ]
        read_only_fields = fields


class UploadSerializer(serializers.Serializer):
    """What a script sends to start an import."""

    file = serializers.FileField()
    project = serializers.SlugRelatedField(
        slug_field="code", queryset=Project.objects.all()
    )
    layer = serializers.ChoiceField(
        choices=ImportBatch.Layer.choices, default="parcels"
    )
    source_layer = serializers.CharField(required=False, allow_blank=True)
    crs = serializers.CharField(required=False, allow_blank=True)
    encoding = serializers.CharField(required=False, allow_blank=True)
    land_class = serializers.ChoiceField(choices=LandClass.choices, required=False)
    mapping = serializers.JSONField(required=False)
    repair = serializers.BooleanField(default=False)
    valid_only = serializers.BooleanField(default=False)
    commit = serializers.BooleanField(default=False)


def _visible(request, pk: int) -> ImportBatch:
    try:
        return batches_visible_to(request.user).get(pk=pk)
    except ImportBatch.DoesNotExist as error:
        raise NotFound(_("No such import batch.")) from error


@extend_schema(
    methods=["GET"],
    tags=["imports"],
    operation_id="imports_list",
    responses={200: build_array_type(build_basic_type(OpenApiTypes.OBJECT))},
)
@extend_schema(
    methods=["POST"],
    tags=["imports"],
    operation_id="imports_upload",
    request={"multipart/form-data": UploadSerializer},
    responses={202: OpenApiTypes.OBJECT},
)
@api_view(["GET", "POST"])
def batches(request):
    """List visible batches, or start one from a multipart upload."""
    if request.method == "GET":
        grants = access.grants_of(request.user)  # read once, for both
        access.refuse_unless_reader(grants)
        page = batches_visible_to(grants)[:100]
        return Response(BatchSerializer(page, many=True).data)
    upload = UploadSerializer(data=request.data)
    if not upload.is_valid():
        raise ValidationError(upload.errors)
    data = upload.validated_data
    if not access.can_import(request.user, data["project"]):
        raise PermissionRefused(_("You may not import into this project."))
    # A refusal (an ImportRefused) is a bilingual 400, and leaves nothing stored.
    batch = tasks.submit(
        data["file"],
        project=data["project"],
        actor=request.user,
        options=pipeline.Options.chosen(data),
        commit=data["commit"],
    )
    return Response(
        BatchSerializer(batch).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/imports/{batch.pk}/"},
    )


@extend_schema(tags=["imports"], responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def batch(request, pk: int):
    """Return one batch with its progress and report."""
    return Response(BatchSerializer(_visible(request, pk)).data)


@extend_schema(tags=["imports"], request=None, responses={202: OpenApiTypes.OBJECT})
@api_view(["POST"])
def commit(request, pk: int):
    """Queue the commit of a checked batch."""
    found = _visible(request, pk)
    if found.state != ImportBatch.State.CHECKED:
        raise BatchNotReady(_("Only a checked, accepted batch can be committed."))
    with transaction.atomic():
        tasks.enqueue(found, commit=True, actor=request.user)
    return Response(BatchSerializer(found).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["imports"], request=None, responses={200: OpenApiTypes.OBJECT})
@api_view(["POST"])
def undo(request, pk: int):
    """Undo a committed batch (registry admins only)."""
    if not access.is_registry_admin(request.user):
        raise PermissionRefused(_("Only registry administrators may undo an import."))
    found = get_object_or_404(ImportBatch, pk=pk)
    return Response(BatchSerializer(pipeline.undo(found, actor=request.user)).data)
