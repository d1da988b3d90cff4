"""Routes of the import API."""

from django.urls import path

from importers import api

urlpatterns = [
    path("", api.batches, name="api-imports"),
    path("<int:pk>/", api.batch, name="api-import"),
    path("<int:pk>/commit/", api.commit, name="api-import-commit"),
    path("<int:pk>/undo/", api.undo, name="api-import-undo"),
]
