"""The profile's tag panel: `{% load tagging %}{% customer_tags_panel customer %}`."""

from django import template

from siyu.tags.selectors import customer_tags_by_dimension, tag_catalogue

register = template.Library()


def customer_tags_context(customer, *, error: str = "") -> dict:
    """What `tags/_customer_tags.html` needs: two queries, whatever the number of tags."""
    dimensions = customer_tags_by_dimension(customer)
    have = {link.tag_id for d in dimensions for link in d.links}
    choices = [
        (entry.group, [t for t in entry.tags if t.pk not in have and not t.is_rule])
        for entry in tag_catalogue()
    ]
    return {
        "customer": customer,
        "dimensions": dimensions,
        "tag_count": len(have),
        "choices": [(group, tags) for group, tags in choices if tags],
        "error": error,
    }


@register.inclusion_tag("tags/_customer_tags.html")
def customer_tags_panel(customer) -> dict:
    return customer_tags_context(customer)
