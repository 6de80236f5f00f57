from django.contrib import admin

from siyu.commerce.models import Order, OrderItem


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("external_id", "channel", "customer", "status", "amount", "paid_at")
    list_filter = ("status", "channel")
    search_fields = ("=external_id",)
    raw_id_fields = ("customer",)
    list_select_related = ("channel", "customer")
    inlines = [OrderItemInline]
    show_full_result_count = False
