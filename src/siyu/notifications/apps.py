from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "siyu.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from siyu.customers.merge import register_customer_owned
        from siyu.notifications.models import Notification

        # A merge moves a notification to the survivor, so its link still leads somewhere.
        register_customer_owned(Notification)
