"""Rule tags: refreshed every hour by the worker, and on demand from the tag's page."""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from siyu.core.errors import DomainError
from siyu.tags.models import Tag
from siyu.tags.services import rule_tag_refresh

log = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="10"))
@lock_task("tags-rules")
def rule_tags_refresh_hourly() -> dict[int, tuple[int, int]]:
    """Every rule tag, one transaction each, so one broken rule does not hold up the rest."""
    done = {}
    for tag in Tag.objects.filter(rule__isnull=False).order_by("pk"):
        try:
            result = rule_tag_refresh(tag=tag)
        except DomainError as error:  # a rule the segment language no longer accepts
            log.warning("rule tag %s not refreshed: %s", tag.pk, error.message)
            continue
        done[tag.pk] = (result.added, result.removed)
    return done


@db_task()
def rule_tag_refresh_task(tag_id: int) -> tuple[int, int] | None:
    tag = Tag.objects.filter(pk=tag_id, rule__isnull=False).first()
    if tag is None:  # deleted, or its rule taken away, since the refresh was asked for
        return None
    result = rule_tag_refresh(tag=tag)
    return result.added, result.removed
