"""Renew cached tiles when the registry announces a committed change."""

import logging

from django.dispatch import receiver

from registry.changes import map_changed
from tilesvc import cache
from tilesvc.vector import LAYERS

log = logging.getLogger(__name__)


@receiver(map_changed)
def renew_tiles(sender, *, layer: str, boxes, **kwargs) -> None:
    """Give the tiles under the changed places a new generation."""
    renewed = cache.invalidate(LAYERS[layer], boxes)
    log.info("renewed %s %s tiles", renewed, layer)


def seed_epochs(sender, *, using: str = "default", **kwargs) -> None:
    """Give every tile layer without an epoch its first one (after migrate)."""
    cache.seed_epochs(list(LAYERS), using=using)
