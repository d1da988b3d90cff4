"""Routes of the tile service, under ``/tiles/``."""

from django.urls import path

from tilesvc import views

urlpatterns = [
    path("<str:layer>.json", views.tilejson, name="tilejson"),
    path("<str:layer>/<int:z>/<int:x>/<int:y>.mvt", views.tile, name="tile"),
]
