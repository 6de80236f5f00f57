from siyu.console.nav import nav_for
from siyu.org.selectors import viewer_for


def console(request) -> dict:
    """The viewer for templates (role, store, whether identifiers are shown in full) and the
    navigation areas it may open."""
    viewer = viewer_for(getattr(request, "user", None))
    return {"viewer": viewer, "nav": nav_for(request, viewer) if viewer.role else []}
