"""Routes of the registry's REST API, under ``/api/``."""

from django.urls import path

from registry.rest import buildings, parcels, projects

urlpatterns = [
    path("parcels/", parcels.ParcelList.as_view(), name="api-parcels"),
    path("parcels/search/", parcels.ParcelSearch.as_view(), name="api-parcel-search"),
    path(
        "parcels/transition/",
        parcels.ParcelTransitionBulk.as_view(),
        name="api-parcel-transition-bulk",
    ),
    path("parcels/<int:pk>/", parcels.ParcelDetail.as_view(), name="api-parcel"),
    path(
        "parcels/<int:pk>/transition/",
        parcels.ParcelTransition.as_view(),
        name="api-parcel-transition",
    ),
    path("buildings/", buildings.BuildingList.as_view(), name="api-buildings"),
    path("projects/", projects.ProjectList.as_view(), name="api-projects"),
    path("projects/<str:code>/", projects.ProjectDetail.as_view(), name="api-project"),
]
