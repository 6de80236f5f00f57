import pytest

from siyu.content.selectors import tracked_link_cache_clear


@pytest.fixture(autouse=True)
def _fresh_link_cache():
    """Each test starts without links kept by the public page's per-process cache."""
    tracked_link_cache_clear()
    yield
    tracked_link_cache_clear()
