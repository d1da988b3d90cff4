"""App configuration of the survey importer."""

from django.apps import AppConfig


class ImportersConfig(AppConfig):
    """The importer; its audit receivers are connected once the app is ready."""

    name = "importers"

    def ready(self) -> None:
        """Connect the receivers that record commits and undos."""
        from importers import audit  # noqa: F401
