"""Writes to the organisation: staff accounts and their roles."""

from django.contrib.auth import get_user_model
from django.db import transaction

from siyu.core.errors import DomainError
from siyu.org.models import Staff, Store


@transaction.atomic
def staff_create(
    *,
    username: str,
    password: str | None,
    name: str,
    role: str = Staff.Role.STAFF,
    store: Store | None = None,
    **profile,
) -> Staff:
    """Create a login and its staff record. Admins may open the Django admin; others may not.

    Raises DomainError for an unknown role, a taken username, or a manager without a store.
    """
    if role not in Staff.Role.values:
        raise DomainError(f"unknown role {role!r}", field="role")
    if role == Staff.Role.MANAGER and store is None:
        raise DomainError("a manager needs a store", field="store")
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise DomainError(f"username {username!r} is taken", field="username")
    user = user_model(username=username, is_staff=role == Staff.Role.ADMIN)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return Staff.objects.create(user=user, name=name, role=role, store=store, **profile)
