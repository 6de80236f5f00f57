import factory
from django.utils import timezone

from siyu.campaigns.models import Campaign, ChannelName, Delivery, Step, Variant
from siyu.customers.identifiers import pinyin_of
from siyu.customers.models import Channel, Customer, Identity, Relationship
from siyu.org.tests.factories import StaffFactory


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


# Campaign deliveries as the customer timeline reads them; the campaign engine's own tests
# build theirs through its services.


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"活动{n}")
    kind = Campaign.Kind.BROADCAST
    status = Campaign.Status.RUNNING
    owner = factory.SubFactory(StaffFactory)


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    campaign = factory.SubFactory(CampaignFactory)
    order = 1
    channel = ChannelName.SMS


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    step = factory.SubFactory(StepFactory)
    name = "A"
    body = "{customer.name}您好"


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A sent delivery (give sent_at); other statuses give the times they keep."""

    class Meta:
        model = Delivery

    variant = factory.SubFactory(VariantFactory)
    step = factory.SelfAttribute("variant.step")
    campaign = factory.SelfAttribute("step.campaign")
    channel = factory.SelfAttribute("step.channel")
    customer = factory.SubFactory(CustomerFactory)
    occurrence = factory.Sequence(str)
    status = Delivery.Status.SENT
    sent_at = None
    planned_for = factory.LazyAttribute(lambda o: o.sent_at or o.claimed_at or timezone.now())
    claimed_at = None
