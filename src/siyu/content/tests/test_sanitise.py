"""Article bodies keep simple formatting and lose everything that could run."""

import pytest

from siyu.content.sanitise import sanitise_html


@pytest.mark.parametrize(
    ("dirty", "forbidden"),
    [
        ("<p>hi</p><script>alert(1)</script>", "<script"),
        ('<img src="x.png" onerror="alert(1)">', "onerror"),
        ('<p onclick="alert(1)">hi</p>', "onclick"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data:"),
        ("<iframe src='https://evil.example'></iframe>", "<iframe"),
        ("<svg><script>alert(1)</script></svg>", "alert"),
        ('<p style="background:url(javascript:alert(1))">x</p>', "style"),
        ("<style>body{display:none}</style>", "display"),
        ("<form action='https://evil.example'><input name=pw></form>", "<input"),
    ],
)
def test_dangerous_markup_is_removed(dirty, forbidden):
    assert forbidden.lower() not in sanitise_html(dirty).lower()


def test_allowed_formatting_is_kept():
    html = (
        "<h2>标题</h2><p><strong>粗体</strong> <em>斜体</em></p>"
        "<ul><li>一</li></ul><blockquote>引用</blockquote>"
        '<img src="https://cdn.example/a.png" alt="图">'
    )
    assert sanitise_html(html) == html


def test_links_keep_their_address_and_get_a_safe_rel():
    cleaned = sanitise_html('<a href="https://shop.example/p" target="_top">买</a>')
    assert 'href="https://shop.example/p"' in cleaned
    assert 'rel="noopener noreferrer nofollow"' in cleaned
    assert "target" not in cleaned
