"""Export the land moved into the land bank (for scheduled exports)."""

import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.dateparse import parse_date

from registry import exports
from registry.errors import RegistryError
from registry.models import ExportLog
from registry.moments import parse_moment


class Command(BaseCommand):
    help = (
        "Export banked parcels as GeoJSON, GeoPackage, zipped Shapefile, FlatGeobuf "
        "or CSV, with a manifest; the export is logged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", type=Path, help="File to write.")
        parser.add_argument("--format", choices=exports.FORMATS, default="geojson")
        parser.add_argument("--user", required=True, help="Acting analyst or admin.")
        parser.add_argument("--project")
        parser.add_argument("--land-class")
        parser.add_argument("--street")
        parser.add_argument("--banked-from", type=parse_date)
        parser.add_argument("--banked-to", type=parse_date)
        parser.add_argument("--as-of", help="Date or date-time (Shanghai).")
        parser.add_argument("--encoding", default="UTF-8", help="Shapefile: UTF-8/GBK")

    def handle(self, *args, output: Path, **opts):
        try:
            user = get_user_model().objects.get(username=opts["user"])
            exports.check_allowed(user)
            selection = exports.Selection(
                project=opts["project"],
                land_class=opts["land_class"],
                street=opts["street"],
                banked_from=opts["banked_from"],
                banked_to=opts["banked_to"],
                as_of=parse_moment(opts["as_of"]),
            )
            manifest = _export(selection, output, opts["format"], opts["encoding"])
        except get_user_model().DoesNotExist as error:
            raise CommandError(f"没有用户 / no user {opts['user']}") from error
        except RegistryError as error:
            raise CommandError(error.bilingual) from error
        with transaction.atomic():  # with its audit record (registry.audit)
            ExportLog.objects.create(
                user=user,
                format=opts["format"],
                selection=selection.as_dict(),
                features=manifest.features,
                total_area_m2=manifest.total_area_m2,
                sha256=manifest.sha256,
                channel="command",
            )
        self.stdout.write(
            f"{manifest.features} 个地块 / parcels, {manifest.total_area_m2:,.1f} m² "
            f"→ {output} (sha256 {manifest.sha256[:16]}…)"
        )


def _export(selection, output: Path, fmt: str, encoding: str):
    """Write the export to ``output``: GeoJSON as is, the other formats zipped."""
    if fmt == "geojson":
        manifest = exports.Manifest.begin(selection, fmt)
        with open(output, "wb") as sink:
            for chunk in exports.geojson_stream(selection, manifest):
                sink.write(chunk)
        return manifest
    with tempfile.TemporaryDirectory() as directory:
        manifest = exports.write_files(
            selection, Path(directory), fmt=fmt, encoding=encoding
        )
        output.write_bytes(exports.zip_directory(Path(directory)))
    return manifest
