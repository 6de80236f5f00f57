import factory
from django.contrib.auth import get_user_model

from siyu.org.models import Staff, Store

PASSWORD = "siyu-test-pass"


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"门店{n}")
    city = "上海"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Staff

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"员工{n}")
    nickname = factory.Sequence(lambda n: f"小助手{n}")
    role = Staff.Role.STAFF
    store = factory.SubFactory(StoreFactory)
