"""Console pages for the customer pool: list with search, profile, identity reveal."""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.conf import settings
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from siyu.console.access import ANY_ROLE, role_required
from siyu.console.htmx import for_htmx, is_htmx_partial
from siyu.core.audit import audit_record, client_ip
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.core.pagination import keyset_page
from siyu.customers.models import Customer, Relationship
from siyu.customers.selectors import (
    MAX_QUERY_LENGTH,
    CustomerFilters,
    channel_list,
    customer_get,
    customer_identities,
    customer_identity_get,
    customer_merges,
    customer_relationships,
    customer_search,
)
from siyu.customers.services import identity_reveal
from siyu.customers.timeline import KINDS, Cursor, CursorError, customer_timeline
from siyu.org.selectors import staff_visible_to, stores_visible_to, viewer_for
from siyu.segments.dsl import SegmentError, compile_definition
from siyu.segments.models import Segment

SCORES = [("", "—"), *((str(n), str(n)) for n in range(5, 0, -1))]


def _id_field(label, empty_label) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label, required=False, coerce=int, empty_value=None, choices=[("", empty_label)]
    )


class CustomerFilterForm(forms.Form):
    """Parses the list's query string; choices are limited to what the viewer may filter by."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=MAX_QUERY_LENGTH,
        error_messages={
            "max_length": _("The search text is too long: at most %(limit_value)d characters.")
        },
    )
    store = _id_field(_("Store"), _("All stores"))
    owner = _id_field(_("Owner"), _("All staff"))
    channel = _id_field(_("Source channel"), _("All channels"))
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        required=False,
        choices=[("", _("All stages")), *Customer.Stage.choices],
    )
    rfm_r = forms.TypedChoiceField(
        label=_("R score"), required=False, coerce=int, empty_value=None, choices=SCORES
    )
    rfm_f = forms.TypedChoiceField(
        label=_("F score"), required=False, coerce=int, empty_value=None, choices=SCORES
    )
    rfm_group = forms.ChoiceField(
        label=_("RFM group"),
        required=False,
        choices=[("", _("All RFM groups")), *Customer.RfmGroup.choices[1:]],  # [0]: no group
    )
    is_super_user = forms.TypedChoiceField(
        label=_("Super user"),
        required=False,
        coerce=lambda value: value == "1",
        empty_value=None,
        choices=[("", _("All customers")), ("1", _("Super users")), ("0", _("Not super users"))],
    )
    # ?segment=ID: the members of a saved segment, so a segment's page can link to its list.
    segment_chosen: Segment | None = None
    segment = forms.IntegerField(
        label=_("Segment"), required=False, min_value=1, widget=forms.HiddenInput
    )
    after = forms.IntegerField(
        label=_("Page link"), required=False, min_value=1, widget=forms.HiddenInput
    )
    before = forms.IntegerField(
        label=_("Page link"), required=False, min_value=1, widget=forms.HiddenInput
    )

    def __init__(self, data, *, stores, staff, channels) -> None:
        super().__init__(data)
        options = {
            "store": [(s.pk, s.name) for s in stores],
            "owner": [(s.pk, staff_label(s)) for s in staff],
            "channel": [(c.pk, c.name) for c in channels],
        }
        for name, choices in options.items():
            self.fields[name].choices = [*self.fields[name].choices, *choices]

    def clean_segment(self):
        """The segment's definition as a condition; the segment itself on `segment_chosen`."""
        pk = self.cleaned_data["segment"]
        if pk is None:
            return None
        segment = Segment.objects.filter(pk=pk).first()
        if segment is None:
            raise forms.ValidationError(_("This segment does not exist (any more)."))
        try:
            condition = compile_definition(segment.definition)
        except SegmentError as exc:
            raise forms.ValidationError(exc.message) from None
        self.segment_chosen = segment
        return condition


def customer_filters(data: dict) -> CustomerFilters:
    """The selector's filters from a CustomerFilterForm's cleaned data."""
    return CustomerFilters(
        q=data.get("q", ""),
        store_id=data.get("store"),
        owner_id=data.get("owner"),
        channel_id=data.get("channel"),
        stage=data.get("stage", ""),
        rfm_r=data.get("rfm_r"),
        rfm_f=data.get("rfm_f"),
        rfm_group=data.get("rfm_group", ""),
        is_super_user=data.get("is_super_user"),
        segment=data.get("segment"),
    )


def staff_label(staff) -> str:
    """The staff member's name, with the persona nickname customers know them by."""
    if staff.nickname and staff.nickname != staff.name:
        return f"{staff.name}（{staff.nickname}）"
    return staff.name


@role_required(ANY_ROLE)
@for_htmx(partial="customers/_results.html")
def customer_list(request):
    viewer = viewer_for(request.user)
    form = CustomerFilterForm(
        request.GET,
        stores=stores_visible_to(viewer),
        staff=staff_visible_to(viewer),
        channels=channel_list(),
    )
    form.is_valid()  # invalid filters are reported and left out; the rest still apply
    data = form.cleaned_data
    page, error = None, ""
    if "q" not in form.errors:
        filters = customer_filters(data)
        try:
            page = keyset_page(
                customer_search(viewer, filters),
                after=data.get("after"),
                before=data.get("before"),
                size=settings.SIYU_PAGE_SIZE,
            )
        except DomainError as exc:
            error = exc.message
    return TemplateResponse(
        request, "customers/list.html", {"form": form, "page": page, "error": error}
    )


@dataclass(frozen=True)
class RelationshipFacts:
    total: int
    active: int
    last_change: datetime | None


def _relationship_facts(relationships: list[Relationship]) -> RelationshipFacts:
    moments = [m for r in relationships for m in (r.added_at, r.removed_at) if m is not None]
    return RelationshipFacts(
        total=len(relationships),
        active=sum(r.status == Relationship.Status.ACTIVE for r in relationships),
        last_change=max(moments, default=None),
    )


class TimelineFilterForm(forms.Form):
    """?kind=…: one kind of timeline record, or all of them when empty; ?before=…: the page
    after the record this cursor names (siyu.customers.timeline.Cursor)."""

    kind = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[("", _("Everything")), *((k.code, k.label) for k in KINDS.values())],
    )
    before = forms.CharField(label=_("Page link"), required=False)

    def clean_before(self) -> Cursor | None:
        text = self.cleaned_data["before"]
        if not text:
            return None
        try:
            return Cursor.parse(text)
        except CursorError as exc:
            raise forms.ValidationError(
                _("This page link is not valid (%(reason)s)."), params={"reason": exc.args[0]}
            ) from None


def _timeline_context(request, customer: Customer) -> dict:
    """The timeline partial's context; an unknown kind or a bad page link is reported and the
    newest records of every (valid) kind shown."""
    form = TimelineFilterForm(request.GET)
    form.is_valid()
    kind = form.cleaned_data.get("kind", "")
    before = form.cleaned_data.get("before")
    viewer = viewer_for(request.user)
    return {
        "customer": customer,
        "timeline": customer_timeline(
            customer,
            kinds=[kind] if kind else None,
            before=before,
            mask_pii=not viewer.sees_full_pii,
            viewer=viewer,
        ),
        "timeline_kind": kind,
        "timeline_before": before,
        "timeline_kinds": KINDS.values(),
        "timeline_form": form,
    }


@role_required(ANY_ROLE)
def customer_detail(request, pk: int):
    """The profile. A merged-away id redirects to its survivor; viewers who see identifiers
    in full leave an audit record of having seen them."""
    viewer = viewer_for(request.user)
    customer = customer_get(viewer, pk)
    if customer.pk != pk:
        return redirect("customers:detail", pk=customer.pk)
    if viewer.sees_full_pii:
        audit_record(
            actor=request.user,
            action=AuditLog.Action.VIEW_PII,
            target=customer,
            summary="viewed the customer profile with full identifiers",
            ip=client_ip(request),
        )
    relationships = customer_relationships(customer)
    return TemplateResponse(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "identities": customer_identities(customer),
            "relationships": relationships,
            "relationship_facts": _relationship_facts(relationships),
            "merges": customer_merges(customer),
            **_timeline_context(request, customer),
        },
    )


@role_required(ANY_ROLE)
def customer_timeline_view(request, pk: int):
    """The profile's timeline alone, for htmx to swap when the kind filter changes; with a
    page link, only the older records, which htmx appends in place of the "older" link."""
    customer = customer_get(viewer_for(request.user), pk)
    context = _timeline_context(request, customer)
    if context["timeline_form"].errors:
        return TemplateResponse(request, "customers/_timeline.html", context, status=400)
    if context["timeline_before"] is not None and is_htmx_partial(request):
        context["timeline_appended"] = True
        return TemplateResponse(request, "customers/_timeline_items.html", context)
    return TemplateResponse(request, "customers/_timeline.html", context)


@role_required(ANY_ROLE)
@require_POST
def identity_reveal_view(request, pk: int, identity_id: int):
    """Show one identifier in full (htmx swaps it in); the service writes the audit record."""
    customer = customer_get(viewer_for(request.user), pk)
    identity = customer_identity_get(customer, identity_id)
    value = identity_reveal(viewer_user=request.user, identity=identity, ip=client_ip(request))
    return TemplateResponse(request, "customers/_identity_value.html", {"value": value})
