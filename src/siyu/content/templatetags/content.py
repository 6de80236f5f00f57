from django import template

from siyu.content.formatting import format_duration

register = template.Library()


@register.filter
def duration(seconds) -> str:
    return format_duration(seconds)
