import factory

from siyu.tags.models import Tag, TagGroup


class TagGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TagGroup

    name = factory.Sequence(lambda n: f"标签组{n}")
    dimension = TagGroup.Dimension.PREFERENCE


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    group = factory.SubFactory(TagGroupFactory)
    name = factory.Sequence(lambda n: f"标签{n}")
    colour = "#1677ff"
