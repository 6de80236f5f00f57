from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "siyu.leads"
    label = "leads"
    verbose_name = "Hot leads"
