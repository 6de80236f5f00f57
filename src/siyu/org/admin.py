from django.contrib import admin

from siyu.org.models import Staff, Store, Team


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "city")
    search_fields = ("code", "name", "city")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "store")
    list_select_related = ("store",)


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin):
    list_display = ("name", "nickname", "role", "store", "status", "wecom_userid", "friend_cap")
    list_filter = ("role", "status", "store")
    search_fields = ("name", "nickname", "wecom_userid", "user__username")
    list_select_related = ("store", "user")
    raw_id_fields = ("user",)
