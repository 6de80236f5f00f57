"""Console: promote an A/B test's winner from the campaign page (campaigns/_ab.html).

Anyone who sees the campaign may promote, as they may pause or cancel it.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.campaigns.experiments import variant_promote
from siyu.campaigns.models import Variant
from siyu.campaigns.selectors import campaigns_visible_to
from siyu.console.access import ANY_ROLE, role_required
from siyu.core.audit import client_ip
from siyu.core.errors import DomainError
from siyu.org.selectors import viewer_for


@require_POST
@role_required(ANY_ROLE)
def variant_promote_view(request, pk: int, variant_id: int):
    campaign = campaigns_visible_to(viewer_for(request.user)).filter(pk=pk).first()
    variant = (
        Variant.objects.select_related("step").filter(pk=variant_id, step__campaign_id=pk).first()
    )
    if campaign is None or variant is None:
        raise Http404
    try:
        variant_promote(
            step=variant.step, variant=variant, actor=request.user, ip=client_ip(request)
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Variant %(name)s is now the only one of step %(order)d.")
            % {"name": variant.name, "order": variant.step.order},
        )
    return redirect("campaigns:detail", pk=pk)
