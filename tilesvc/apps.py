"""The tile service: vector tiles built in SQL, raster tiles of survey imagery."""

from django.apps import AppConfig


class TilesvcConfig(AppConfig):
    """The tile service application."""

    name = "tilesvc"
    verbose_name = "Map tiles"

    def ready(self):
        """Subscribe the tile cache to the registry's change announcements."""
        from tilesvc import invalidation  # noqa: F401  (connects its receivers)
