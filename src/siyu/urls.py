from django.contrib import admin
from django.urls import include, path

from siyu.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("settings/api-keys/", include("siyu.core.api_key_urls")),
    path("settings/webhooks/", include("siyu.webhooks.urls")),
    path("settings/wecom/", include("siyu.channels.wecom.urls")),
    # WeCom's callback URL: public, authenticated by the message signature (channels.wecom).
    path("wecom/", include("siyu.channels.wecom.public_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include("siyu.customers.urls")),
    path("imports/", include("siyu.imports.urls")),
    path("tags/", include("siyu.tags.urls")),
    path("segments/", include("siyu.segments.urls")),
    path("campaigns/", include("siyu.campaigns.urls")),
    path("events/", include("siyu.events.urls")),
    path("content/", include("siyu.content.urls")),
    # Tracked material links opened by customers: public, no login (content.public_views).
    path("m/", include("siyu.content.public_urls")),
    path("audit/", include("siyu.core.urls")),
    path("org/", include("siyu.org.urls")),
    path("notifications/", include("siyu.notifications.urls")),
    path("leads/", include("siyu.leads.urls")),
    path("", include("siyu.console.urls")),
]
