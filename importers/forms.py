"""The surveyor's upload form."""

from django import forms
from django.utils.translation import gettext_lazy as _

from importers.models import ImportBatch
from registry.choices import LandClass
from registry.models import Project


class UploadForm(forms.Form):
    """A survey file, the project it is for, and how to read it."""

    project = forms.ModelChoiceField(
        label=_("Project"), queryset=Project.objects.none()
    )
    layer = forms.ChoiceField(label=_("Layer"), choices=ImportBatch.Layer.choices)
    file = forms.FileField(
        label=_("Survey file"),
        help_text=_("Zipped shapefile, GeoPackage, GeoJSON or GeoJSONSeq."),
    )
    source_layer = forms.CharField(
        label=_("Layer in the file"),
        required=False,
        help_text=_("Only when the file holds several layers."),
    )
    crs = forms.CharField(
        label=_("Coordinate system"),
        required=False,
        help_text=_("Only when the file has no .prj, e.g. EPSG:4547."),
    )
    encoding = forms.CharField(
        label=_("Text encoding"),
        required=False,
        help_text=_("Leave empty to detect (e.g. GB18030, UTF-8)."),
    )
    land_class = forms.ChoiceField(
        label=_("Land class of every parcel"),
        required=False,
        choices=[("", "—"), *LandClass.choices],
        help_text=_("Only for files without a land-class field."),
    )
    repair = forms.BooleanField(label=_("Repair invalid geometry"), required=False)
    valid_only = forms.BooleanField(
        label=_("Import valid rows only"),
        required=False,
        help_text=_("Otherwise any rejected row refuses the whole file."),
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects


class RecheckForm(forms.Form):
    """Options to check the same upload again with."""

    encoding = forms.CharField(label=_("Text encoding"), required=False)
    crs = forms.CharField(label=_("Coordinate system"), required=False)
    land_class = forms.ChoiceField(
        label=_("Land class of every parcel"),
        required=False,
        choices=[("", "—"), *LandClass.choices],
    )
    code_field = forms.CharField(label=_("Parcel code field"), required=False)
    land_class_field = forms.CharField(label=_("Land class field"), required=False)
    declared_area_field = forms.CharField(
        label=_("Declared area field"), required=False
    )
    repair = forms.BooleanField(label=_("Repair invalid geometry"), required=False)
    valid_only = forms.BooleanField(label=_("Import valid rows only"), required=False)
