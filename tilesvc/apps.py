"""The tile service: vector tiles built in SQL, raster tiles of survey imagery."""

from django.apps import AppConfig


class TilesvcConfig(AppConfig):
    """The tile service application."""

    name = "tilesvc"
    verbose_name = "Map tiles"

    def ready(self):
        """Subscribe the tile cache to the registry's change announcements.

        And give every tile layer a first epoch after ``migrate`` and after
        ``flush`` (which empties the table), so that tiles are kept from the
        first request on.
        """
        from django.db.models.signals import post_migrate

        from tilesvc import invalidation

        post_migrate.connect(invalidation.seed_epochs, sender=self)
