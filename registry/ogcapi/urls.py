"""Routes of the OGC API – Features endpoints, under ``/ogcapi/``."""

from django.urls import path

from registry.ogcapi import views

urlpatterns = [
    path("", views.LandingPage.as_view(), name="ogc-landing"),
    path("conformance", views.Conformance.as_view(), name="ogc-conformance"),
    path("collections", views.Collections.as_view(), name="ogc-collections"),
    path(
        "collections/<str:collection_id>",
        views.CollectionView.as_view(),
        name="ogc-collection",
    ),
    path(
        "collections/<str:collection_id>/items",
        views.Items.as_view(),
        name="ogc-items",
    ),
    path(
        "collections/<str:collection_id>/items/<str:feature_id>",
        views.Item.as_view(),
        name="ogc-item",
    ),
]
