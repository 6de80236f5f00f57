import factory

from siyu.content.models import Material, Script, ScriptCategory


def category(key: str = "greeting") -> ScriptCategory:
    """A built-in category (inserted by the migration)."""
    return ScriptCategory.objects.get(builtin=key)


class MaterialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Material

    kind = Material.Kind.PRODUCT
    title = factory.Sequence(lambda n: f"素材{n}")
    url = factory.Sequence(lambda n: f"https://shop.example/p/{n}")
    status = Material.Status.PUBLISHED


class ScriptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Script

    category = factory.LazyFunction(category)
    title = factory.Sequence(lambda n: f"话术{n}")
    body = "{customer.name}您好，我是{staff.nickname}"
