"""Undo a committed import batch."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from importers import pipeline
from importers.models import ImportBatch
from registry.errors import RegistryError


class Command(BaseCommand):
    help = "Undo a committed import batch while nothing later touched its parcels."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("batch", type=int)
        parser.add_argument("--user", required=True, help="Acting registry admin.")

    def handle(self, *args, batch: int, user: str, **options):
        try:
            found = ImportBatch.objects.get(pk=batch)
            actor = get_user_model().objects.get(username=user)
        except (ImportBatch.DoesNotExist, get_user_model().DoesNotExist) as error:
            raise CommandError(f"找不到 / not found: {error}") from error
        try:
            undone = pipeline.undo(found, actor=actor)
        except RegistryError as error:
            raise CommandError(error.bilingual) from error
        self.stdout.write(f"批次 / batch #{undone.pk}: {undone.get_state_display()}")
