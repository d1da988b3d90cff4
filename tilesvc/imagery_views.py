"""Orthophoto pages and tiles: upload (surveyors), lists, XYZ tiles and TileJSON.

The pages need a login (the site's ``LoginRequiredMiddleware`` redirects to it)
and a role in the registry; uploading needs ``access.can_import`` for the chosen
project. Tiles and TileJSON behave like the vector tiles (``tilesvc.views``), for
the same map clients: a session or an API token, a role, and errors as JSON in
Chinese and English (401, 403, 404, 400) instead of an HTML login page.

An orthophoto's tiles never change (a new delivery is a new orthophoto), so they
carry an ETag made from the COG's SHA-256 and the browser may keep them for a
day without asking; ``private`` because they are served to logged-in users only.
"""

import hashlib
import json

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from registry import access
from registry.errors import BadQuery, NotFound, RegistryError
from registry.models import Project
from tilesvc import imagery, tasks
from tilesvc.lane import in_tile_lane
from tilesvc.models import Orthophoto
from tilesvc.readers import tile_reader

TILE_MAX_AGE_S = 24 * 3600
TILEJSON_MAX_AGE_S = 300


class OrthophotoForm(forms.Form):
    """An orthophoto, the project it shows and when it was flown."""

    project = forms.ModelChoiceField(
        label=_("Project"), queryset=Project.objects.none()
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    captured_on = forms.DateField(
        label=_("Captured on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    file = forms.FileField(label=_("Orthophoto (GeoTIFF)"))

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        limits = imagery.limits()
        self.fields["file"].help_text = gettext(
            "A GeoTIFF with its coordinate reference system, 8-bit grey, RGB or "
            "RGBA, at most %(side)s pixels on a side, %(pixels)s pixels in all and "
            "%(megabytes)s MB."
        ) % {
            "side": f"{limits.side_px:,}",
            "pixels": f"{limits.pixels:,}",
            "megabytes": f"{limits.upload_bytes // 1024**2:,}",
        }


class _UploadLimit(FileUploadHandler):
    """Stop receiving a file once it passes the byte limit.

    Without it Django would write the whole request body to a temporary file
    before the view could look at its size.
    """

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        self.exceeded_by: str | None = None

    def receive_data_chunk(self, raw_data, start):
        """Pass the chunk on, or stop once the file is over the limit."""
        if start + len(raw_data) > self.limit:
            self.exceeded_by = self.file_name
            # Read and drop the rest of the body: a reset connection would show
            # the surveyor a browser error instead of the form's explanation.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        """Leave the file to the handlers after this one."""
        return None

    def refusal(self) -> imagery.ImageryRefused:
        """Return the refusal of the file that was stopped."""
        return imagery.ImageryRefused(
            _(
                "%(file)s is larger than %(limit)s bytes, the most an "
                "orthophoto may be."
            ),
            file=self.exceeded_by,
            limit=f"{self.limit:,}",
        )


@csrf_exempt  # checked by _upload, once the size limit is in place (see below)
@require_http_methods(["GET", "POST"])
def orthophoto_upload(request):
    """Take an orthophoto, queue its conversion and show the project's orthophotos."""
    # Upload handlers must be set before anything reads the body, and the CSRF
    # check reads it; hence csrf_exempt here and csrf_protect on _upload.
    limit = _UploadLimit(request, imagery.limits().upload_bytes)
    request.upload_handlers.insert(0, limit)
    return _upload(request, limit)


@csrf_protect
def _upload(request, limit: _UploadLimit):
    projects = access.importable_projects(request.user)
    if not projects.exists():
        raise PermissionDenied
    initial = {}
    if request.method == "GET" and request.GET.get("project", "").isdigit():
        initial["project"] = projects.filter(pk=request.GET["project"]).first()
    form = OrthophotoForm(
        request.POST or None, request.FILES or None, projects=projects, initial=initial
    )
    if request.method == "POST":
        valid = form.is_valid()
        if limit.exceeded_by is not None:
            form.errors["file"] = form.error_class([limit.refusal().bilingual])
            valid = False
        if valid:
            data = form.cleaned_data
            try:
                orthophoto = tasks.submit(
                    data["file"],
                    project=data["project"],
                    title=data["title"],
                    actor=request.user,
                    captured_on=data["captured_on"],
                )
            except RegistryError as error:
                form.add_error("file", error.bilingual)
            else:
                return redirect("imagery:project", project_id=orthophoto.project_id)
    return render(request, "tilesvc/imagery_upload.html", {"form": form})


class _ApiUpload(serializers.Serializer):
    """What a script sends to upload an orthophoto."""

    file = serializers.FileField()
    project = serializers.SlugRelatedField(
        slug_field="code", queryset=Project.objects.all()
    )
    title = serializers.CharField(max_length=200)
    captured_on = serializers.DateField(required=False, allow_null=True)


@extend_schema(
    tags=["imagery"],
    operation_id="orthophoto_upload",
    request={"multipart/form-data": _ApiUpload},
    responses={202: OpenApiTypes.OBJECT},
)
@api_view(["POST"])
def api_upload(request):
    """Take an orthophoto from a script (token or session) and queue its conversion.

    Answers 202 with what ``GET /imagery/{id}.json`` says (poll it for the
    progress), or a bilingual 400 when the file is refused (nothing kept).
    """
    # Before the body is read: stop a file over the limit while it arrives.
    limit = _UploadLimit(request._request, imagery.limits().upload_bytes)
    request._request.upload_handlers.insert(0, limit)
    access.refuse_unless_reader(request.user)
    upload = _ApiUpload(data=request.data)
    if limit.exceeded_by is not None:
        raise limit.refusal()
    if not upload.is_valid():
        raise ValidationError(upload.errors)
    data = upload.validated_data
    orthophoto = tasks.submit(
        data["file"],
        project=data["project"],
        title=data["title"],
        actor=request.user,
        captured_on=data.get("captured_on"),
    )
    return Response(
        status_document(request, orthophoto),
        status=202,
        headers={"Location": reverse("imagery:status", args=[orthophoto.pk])},
    )


@require_safe
def orthophoto_list(request, project_id: int | None = None):
    """List the orthophotos of one project, or of every project."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    project = get_object_or_404(Project, pk=project_id) if project_id else None
    if project is not None:
        can_upload = access.can_import(request.user, project)
    else:
        can_upload = access.importable_projects(request.user).exists()
    return render(
        request,
        "tilesvc/imagery_list.html",
        {
            "project": project,
            "orthophotos": imagery.orthophoto_list(project=project, every_state=True),
            "can_upload": can_upload,
        },
    )


def _readable(request, pk: int) -> Orthophoto:
    """Return the orthophoto if the session's or the token's user may read it."""
    # The role first: someone without one learns nothing, not even what exists.
    tile_reader(request)
    orthophoto = Orthophoto.objects.select_related("project").filter(pk=pk).first()
    if orthophoto is None:
        raise NotFound(_("There is no orthophoto no. %(id)s."), id=pk)
    return orthophoto


def _served(request, pk: int) -> Orthophoto:
    """Return the orthophoto if readable and converted (only then has it tiles)."""
    orthophoto = _readable(request, pk)
    if orthophoto.state != Orthophoto.State.READY:
        raise NotFound(
            _("Orthophoto no. %(id)s has no tiles: its conversion is %(state)s."),
            id=pk,
            state=Orthophoto.State(orthophoto.state).label,  # lazy: either language
        )
    return orthophoto


@login_not_required  # sessions and tokens are checked by tile_reader (401 otherwise)
@require_safe
def status(request, pk: int):
    """Describe an orthophoto and where its conversion stands, as JSON.

    For the list page, which polls it while a conversion runs, and for scripts
    (with an API token) that uploaded one.
    """
    try:
        orthophoto = _readable(request, pk)
    except RegistryError as error:
        return error.response()
    return JsonResponse(
        status_document(request, orthophoto),
        json_dumps_params={"ensure_ascii": False},
        headers={"Cache-Control": "private, no-cache"},
    )


def status_document(request, orthophoto: Orthophoto) -> dict:
    """Return what the status endpoint says of one orthophoto."""
    ready = orthophoto.state == Orthophoto.State.READY
    return {
        "id": orthophoto.pk,
        "project": orthophoto.project.code,
        "title": orthophoto.title,
        "source_name": orthophoto.source_name,
        "state": orthophoto.state,
        "state_label": str(orthophoto.get_state_display()),
        "progress": orthophoto.progress,
        "stage": orthophoto.stage,
        "stage_label": str(imagery.STAGE_LABELS.get(orthophoto.stage, "")),
        "failure": orthophoto.failure or None,
        "width": orthophoto.width,
        "height": orthophoto.height,
        "uploaded_at": orthophoto.uploaded_at.isoformat(),
        "converted_at": (
            orthophoto.converted_at.isoformat() if orthophoto.converted_at else None
        ),
        "tilejson": (
            request.build_absolute_uri(
                reverse("imagery:tilejson", args=[orthophoto.pk])
            )
            if ready
            else None
        ),
    }


def _cacheable(response: HttpResponse, etag: str, max_age: int) -> HttpResponse:
    response.headers["ETag"] = etag
    patch_cache_control(response, private=True, max_age=max_age)
    return response


@in_tile_lane  # answered straight after the session and user middleware
@login_not_required  # sessions and tokens are checked by tile_reader (401 otherwise)
@require_safe
def tile(request, pk: int, z: int, x: int, y: int, img_format: str):
    """Return one XYZ tile of the orthophoto; 204 where the photo has no pixels."""
    try:
        orthophoto = _served(request, pk)
        etag = f'"{orthophoto.sha256[:32]}-{imagery.RENDERING}-{img_format}"'
        if (cached := get_conditional_response(request, etag=etag)) is not None:
            return _cacheable(cached, etag, TILE_MAX_AGE_S)
        content = imagery.orthophoto_tile(
            orthophoto, z=z, x=x, y=y, img_format=img_format
        )
    except RegistryError as error:
        return error.response()
    if content is None:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(content, content_type=imagery.TILE_FORMATS[img_format])
    return _cacheable(response, etag, TILE_MAX_AGE_S)


@login_not_required  # sessions and tokens are checked by tile_reader (401 otherwise)
@require_safe
def tilejson(request, pk: int):
    """Describe the orthophoto's tiles as TileJSON 3.0.0 (``?format=webp`` for WebP).

    See https://github.com/mapbox/tilejson-spec/tree/master/3.0.0.
    """
    try:
        orthophoto = _served(request, pk)
        img_format = request.GET.get("format", "png")
        if img_format not in imagery.TILE_FORMATS:
            raise BadQuery(
                _("%(parameter)s: unknown value %(value)s; known values: %(known)s."),
                parameter="format",
                value=img_format[:40],
                known=", ".join(imagery.TILE_FORMATS),
            )
    except RegistryError as error:
        return error.response()
    facts = imagery.orthophoto_tileset(orthophoto)
    west, south, east, north = facts.bounds
    document = {
        "tilejson": "3.0.0",
        "tiles": [_tile_template(request, orthophoto, img_format)],
        "name": orthophoto.title,
        "description": f"{orthophoto.project.code} · {orthophoto.source_name}",
        "scheme": "xyz",
        "minzoom": facts.minzoom,
        "maxzoom": facts.maxzoom,
        "bounds": [round(value, 7) for value in facts.bounds],
        "center": [
            round((west + east) / 2, 7),
            round((south + north) / 2, 7),
            facts.minzoom,
        ],
    }
    body = json.dumps(document, ensure_ascii=False).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    if (cached := get_conditional_response(request, etag=etag)) is not None:
        return _cacheable(cached, etag, TILEJSON_MAX_AGE_S)
    response = HttpResponse(body, content_type="application/json")
    return _cacheable(response, etag, TILEJSON_MAX_AGE_S)


def _tile_template(request, orthophoto: Orthophoto, img_format: str) -> str:
    # The URL resolver only reverses integers, and build_absolute_uri would
    # percent-encode braces: reverse distinct sentinels, make the URL absolute,
    # then put TileJSON's placeholders where the sentinels landed.
    sentinels = {"z": 900000001, "x": 900000002, "y": 900000003}
    url = request.build_absolute_uri(
        reverse(f"imagery:tile-{img_format}", kwargs={"pk": orthophoto.pk, **sentinels})
    )
    for name, value in sentinels.items():
        url = url.replace(str(value), "{" + name + "}")
    return url
