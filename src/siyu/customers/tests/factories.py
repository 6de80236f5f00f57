import factory
from django.utils import timezone

from siyu.customers.identifiers import pinyin_of
from siyu.customers.models import Channel, Customer, Identity, Relationship


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"channel-{n}")
    name = factory.Sequence(lambda n: f"渠道{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"张{n}")
    name_pinyin = factory.LazyAttribute(lambda o: pinyin_of(o.name)[0])
    name_initials = factory.LazyAttribute(lambda o: pinyin_of(o.name)[1])
    first_seen_at = factory.LazyFunction(timezone.now)
    store = factory.LazyAttribute(lambda o: o.owner.store if o.owner else None)
    owner = None


class PhoneIdentityFactory(factory.django.DjangoModelFactory):
    """A phone identity; also sets the customer's denormalised primary phone."""

    class Meta:
        model = Identity
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    kind = Identity.Kind.PHONE
    value = factory.Sequence(lambda n: f"+86139{n:08d}")

    @factory.post_generation
    def primary(obj, create, extracted, **kwargs):
        if create and not obj.customer.phone:
            obj.customer.phone, obj.customer.phone_tail = obj.value, obj.value[-4:]
            obj.customer.save(update_fields=["phone", "phone_tail"])


class RelationshipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Relationship

    customer = factory.SubFactory(CustomerFactory)
    staff = None
    added_at = factory.LazyFunction(timezone.now)
