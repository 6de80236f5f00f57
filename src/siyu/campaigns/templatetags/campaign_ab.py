"""{% campaign_ab_tests campaign as tests %}: the campaign's A/B tests for campaigns/_ab.html,
so the page that includes it needs nothing but `campaign` in its context."""

from django import template
from django.conf import settings

from siyu.campaigns.experiments import StepTest, variant_figures

register = template.Library()


@register.simple_tag
def campaign_ab_tests(campaign) -> list[StepTest]:
    return variant_figures(campaign)


@register.simple_tag
def ab_reply_rule() -> dict:
    """What counts as a reply: the event type and the window (settings)."""
    return {
        "event": settings.SIYU_CAMPAIGN_REPLY_EVENT,
        "hours": settings.SIYU_CAMPAIGN_REPLY_HOURS,
    }
