"""Reads of the tag system. Member counts are scoped to the viewer, like every customer read."""

from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.http import Http404

from siyu.customers.models import Customer
from siyu.customers.selectors import customers_visible_to
from siyu.org.selectors import Viewer
from siyu.tags.models import CustomerTag, Tag, TagGroup

DIMENSIONS = list(TagGroup.Dimension)


@dataclass
class GroupTags:
    group: TagGroup
    tags: list[Tag] = field(default_factory=list)


def _by_group(groups: list[TagGroup], tags: list[Tag]) -> list[GroupTags]:
    order = {value: index for index, value in enumerate(TagGroup.Dimension.values)}
    result = {group.pk: GroupTags(group) for group in groups}
    for tag in tags:
        result[tag.group_id].tags.append(tag)
    return sorted(
        result.values(), key=lambda g: (order[g.group.dimension], g.group.order, g.group.name)
    )


def tag_catalogue(viewer: Viewer | None = None) -> list[GroupTags]:
    """Every group with its tags, in dimension order; two queries.

    With a viewer, each tag carries `members`: how many of the viewer's customers have it
    (one aggregate query for all tags).
    """
    groups = list(TagGroup.objects.all())
    tags = Tag.objects.order_by("order", "name")
    if viewer is not None:
        if viewer.is_admin:
            members = Count("assignments")
        else:
            members = Count(
                "assignments",
                filter=Q(assignments__customer__in=customers_visible_to(viewer).values("pk")),
            )
        tags = tags.annotate(members=members)
    return _by_group(groups, list(tags))


def tag_get(pk) -> Tag:
    tag = Tag.objects.select_related("group").filter(pk=pk).first()
    if tag is None:
        raise Http404
    return tag


def tag_group_get(pk) -> TagGroup:
    group = TagGroup.objects.filter(pk=pk).first()
    if group is None:
        raise Http404
    return group


@dataclass
class DimensionTags:
    label: str
    links: list[CustomerTag]


def customer_tags_by_dimension(customer: Customer) -> list[DimensionTags]:
    """The customer's tags as chips grouped by dimension; one query."""
    links = (
        CustomerTag.objects.filter(customer=customer)
        .select_related("tag", "tag__group")
        .order_by("tag__group__order", "tag__group__name", "tag__order", "tag__name")
    )
    by_dimension: dict[str, list[CustomerTag]] = {}
    for link in links:
        by_dimension.setdefault(link.tag.group.dimension, []).append(link)
    return [
        DimensionTags(str(dimension.label), by_dimension[dimension.value])
        for dimension in DIMENSIONS
        if dimension.value in by_dimension
    ]
