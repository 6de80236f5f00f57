from django.urls import re_path

from siyu.content import public_views

app_name = "links"
# A code is 10 URL-safe characters; anything else is not a link and never reaches the database.
CODE = r"(?P<code>[A-Za-z0-9_-]{6,16})"
urlpatterns = [
    re_path(rf"^{CODE}$", public_views.link_open, name="open"),
    re_path(rf"^{CODE}/beacon$", public_views.link_beacon, name="beacon"),
    re_path(rf"^{CODE}/(?P<part>image|file)$", public_views.link_asset, name="asset"),
]
