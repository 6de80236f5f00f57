from django.urls import path

from siyu.events import views

app_name = "events"
urlpatterns = [
    path("types/", views.type_list, name="types"),
    path("types/<slug:name>/", views.type_edit, name="type_edit"),
]
