from siyu.org.selectors import viewer_for


def console(request) -> dict:
    """The viewer for templates: role, store and whether identifiers are shown in full."""
    return {"viewer": viewer_for(getattr(request, "user", None))}
