"""Who is looking: the role, store and permissions every scoped query starts from."""

from dataclasses import dataclass

from django.db.models import QuerySet

from siyu.org.models import Staff, Store


@dataclass(frozen=True)
class Viewer:
    user_id: int | None
    staff_id: int | None
    role: str | None
    store_id: int | None
    sees_full_pii: bool
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == Staff.Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == Staff.Role.MANAGER


NOBODY = Viewer(user_id=None, staff_id=None, role=None, store_id=None, sees_full_pii=False)


def viewer_for(user) -> Viewer:
    """The viewer for a login user, memoised on the user object for the request.

    A superuser without a staff record is an admin; any other login without one sees nothing.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return NOBODY
    cached = getattr(user, "_siyu_viewer", None)
    if cached is not None:
        return cached
    staff = (
        Staff.objects.filter(user=user)
        .only("id", "name", "role", "store_id", "can_view_pii", "status")
        .first()
    )
    username = user.get_username()
    if staff is not None and staff.status == Staff.Status.ACTIVE:
        viewer = Viewer(
            user.pk,
            staff.pk,
            staff.role,
            staff.store_id,
            staff.sees_full_pii,
            staff.name or username,
        )
    elif user.is_superuser:
        viewer = Viewer(user.pk, None, Staff.Role.ADMIN, None, True, username)
    else:
        viewer = Viewer(user.pk, None, None, None, False, username)
    user._siyu_viewer = viewer
    return viewer


def staff_visible_to(viewer: Viewer) -> QuerySet[Staff]:
    qs = Staff.objects.select_related("store", "user")
    if viewer.is_admin:
        return qs
    if viewer.is_manager:
        return qs.filter(store_id=viewer.store_id)
    return qs.filter(pk=viewer.staff_id)


def stores_visible_to(viewer: Viewer) -> QuerySet[Store]:
    if viewer.is_admin:
        return Store.objects.all()
    return Store.objects.filter(pk=viewer.store_id)
