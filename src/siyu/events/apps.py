from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "siyu.events"
    label = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from siyu.customers.merge import register_customer_owned
        from siyu.events import signals
        from siyu.events.models import Event

        register_customer_owned(Event)
        signals.connect()
