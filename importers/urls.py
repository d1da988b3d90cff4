"""Routes of the import pages."""

from django.urls import path

from importers import views

app_name = "importers"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.upload, name="upload"),
    path("<int:pk>/", views.batch_detail, name="batch"),
    path("<int:pk>/commit/", views.batch_commit, name="commit"),
    path("<int:pk>/recheck/", views.batch_recheck, name="recheck"),
    path("<int:pk>/undo/", views.batch_undo, name="undo"),
    path("<int:pk>/mapping/", views.save_mapping, name="save_mapping"),
]
