"""Import a survey file from the command line (a dry run unless --commit)."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from importers import pipeline
from importers.models import ImportBatch
from registry.choices import LandClass
from registry.errors import RegistryError
from registry.models import Project


class Command(BaseCommand):
    help = (
        "Check a survey file (zipped shapefile, GeoPackage, GeoJSON, GeoJSONSeq) "
        "and, with --commit, import it into a project. Exit status 0 when the file "
        "is accepted (dry run) or committed, 1 when it is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="Project code, e.g. L6.")
        parser.add_argument(
            "--layer", choices=["parcels", "buildings"], default="parcels"
        )
        parser.add_argument("--source-layer", help="Layer to read when several.")
        parser.add_argument("--crs", help="EPSG:N or WKT, when the file has none.")
        parser.add_argument("--encoding", help="Text encoding, e.g. GB18030, UTF-8.")
        parser.add_argument("--mapping", type=Path, help="Field mapping JSON file.")
        parser.add_argument("--land-class", choices=LandClass.values)
        parser.add_argument("--repair", action="store_true")
        parser.add_argument("--valid-only", action="store_true")
        parser.add_argument("--report", type=Path, help="Write the report as JSON.")
        parser.add_argument("--commit", action="store_true")
        parser.add_argument(
            "--user", default=None, help="Acting user (default: the only superuser)."
        )

    def handle(self, *args, **opts):
        path: Path = opts["path"]
        if not path.is_file():
            raise CommandError(f"找不到文件 / no such file: {path}")
        try:
            project = Project.objects.get(code=opts["project"])
        except Project.DoesNotExist as error:
            raise CommandError(
                f"没有项目 / no project with code {opts['project']}"
            ) from error
        actor = self._actor(opts["user"])
        options = pipeline.Options(
            layer=opts["layer"],
            source_layer=opts["source_layer"],
            crs=opts["crs"],
            encoding=opts["encoding"],
            mapping=json.loads(opts["mapping"].read_text(encoding="utf-8"))
            if opts["mapping"]
            else None,
            land_class=opts["land_class"],
            repair=opts["repair"],
            valid_only=opts["valid_only"],
        )
        try:
            batch = pipeline.new_batch(
                path=path.resolve(),
                name=path.name,
                project=project,
                actor=actor,
                options=options,
            )
        except RegistryError as error:
            raise CommandError(error.bilingual) from error
        with tqdm(total=100, unit="%", disable=opts["verbosity"] == 0) as bar:

            def progress(percent: int, stage: str) -> None:
                bar.set_description(stage)
                bar.update(percent - bar.n)

            batch = pipeline.run(batch, commit=opts["commit"], progress=progress)
        if opts["report"]:
            opts["report"].write_text(
                json.dumps(_report(batch), ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
        self._print(batch)
        if batch.state not in (ImportBatch.State.CHECKED, ImportBatch.State.COMMITTED):
            raise SystemExit(1)

    def _actor(self, username):
        users = get_user_model().objects
        if username:
            try:
                return users.get(username=username)
            except users.model.DoesNotExist as error:
                raise CommandError(f"没有用户 / no user {username}") from error
        superusers = list(users.filter(is_superuser=True, is_active=True)[:2])
        if len(superusers) != 1:
            raise CommandError(
                "请用 --user 指定操作人 / name the acting user with --user"
            )
        return superusers[0]

    def _print(self, batch: ImportBatch) -> None:
        out = self.stdout
        report = batch.report or {}
        out.write(
            f"批次 / batch #{batch.pk}: {batch.get_state_display()} ({batch.state})"
        )
        if "refusal" in report:
            out.write(f"  {report['refusal']['zh']}\n  {report['refusal']['en']}")
            return
        counts = report.get("counts", {})
        out.write(
            f"  {report.get('format')} · {report.get('layer')} · "
            f"{batch.encoding} ({batch.encoding_source}) · {batch.crs}"
        )
        out.write(
            "  features {features}, valid {valid}, rejected {rejected}, errors "
            "{errors}, warnings {warnings}".format(**counts)
        )
        if batch.state == ImportBatch.State.COMMITTED:
            out.write(
                f"  created {batch.created}, updated {batch.updated}, "
                f"unchanged {batch.unchanged}"
            )
        for problem in report.get("problems", [])[:50]:
            where = f"row {problem['row']}" if problem["row"] else "file"
            out.write(
                f"  [{problem['severity']}] {where} {problem['code']} "
                f"{problem['field']}: {problem['zh']} / {problem['en']}"
            )


def _report(batch: ImportBatch) -> dict:
    return {
        "batch": batch.pk,
        "state": batch.state,
        "sha256": batch.sha256,
        "created": batch.created,
        "updated": batch.updated,
        "unchanged": batch.unchanged,
        "rejected": batch.rejected,
        **batch.report,
    }
