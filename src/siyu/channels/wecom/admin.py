from django.contrib import admin

from siyu.channels.wecom.models import Callback, ChannelCode, CustomerGroup


@admin.register(ChannelCode)
class ChannelCodeAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "channel", "welcome_script", "spend", "created_at")
    search_fields = ("name", "state")
    filter_horizontal = ("staff", "tags")


@admin.register(Callback)
class CallbackAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event", "change_type", "processed_at", "attempts", "error")
    list_filter = ("event", "change_type")
    readonly_fields = [f.name for f in Callback._meta.fields]


@admin.register(CustomerGroup)
class CustomerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "chat_id", "owner", "status", "refreshed_at")
    search_fields = ("name", "chat_id")
