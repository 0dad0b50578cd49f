"""Model text as Markdown in the page: formatting kept, nothing the model writes becomes live HTML —
checked on the markup, then in Chromium, where an escaped handler would actually run."""

from __future__ import annotations

import re

import pytest

from playground.safe_markdown import LINK_REL, to_html
from tests.support import browser

HOSTILE = {
    "img onerror": "<img src=x onerror=\"window.pwned='img'\">",
    "script": "<script>window.pwned='script'</script>",
    "javascript link": "[click](javascript:window.pwned='link')",
    "mixed-case scheme": "[click](JaVaScRiPt:window.pwned='case')",
    "entity-encoded scheme": "[click](&#106;avascript:window.pwned='entity')",
    "reference link": "[click][r]\n\n[r]: javascript:window.pwned='ref'",
    "data URL": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "raw anchor": "<a href=\"javascript:window.pwned='a'\">click</a>",
    "svg onload": "<svg onload=\"window.pwned='svg'\"></svg>",
    "iframe": "<iframe src=\"javascript:window.pwned='iframe'\"></iframe>",
    "quote breaking out of href": "[x](https://example.com/\"onmouseover=\"window.pwned='attr')",
    "code fence language": "```\"><img src=x onerror=\"window.pwned='fence'\">\nx\n```",
}


def test_markdown_is_rendered():
    rendered = to_html("Some **bold** and `code`.\n\n```python\nprint(1 < 2)\n```\n\n- one\n- two\n\n"
                       "1. first\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nline one\nline two")
    for part in ("<strong>bold</strong>", "<code>code</code>", '<pre><code class="language-python">print(1 &lt; 2)',
                 "<ul>\n<li>one</li>", "<ol>\n<li>first</li>", "<td>1</td>", "line one<br />"):
        assert part in rendered


def test_links_open_apart_from_the_playground():
    rendered = to_html("See [the docs](https://example.com/a?b=1) or <https://example.org>, "
                       "or mail [me](mailto:a@b.c).")
    links = re.findall(r"<a [^>]*>", rendered)
    assert len(links) == 3
    assert all(f'rel="{LINK_REL}"' in link and 'target="_blank"' in link for link in links)
    assert 'href="https://example.com/a?b=1"' in links[0] and "noopener" in LINK_REL


@pytest.mark.parametrize("attack", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markdown_is_neutralised(attack):
    rendered = to_html(attack)
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", rendered))
    assert tags <= {"p", "a", "pre", "code", "br"}, rendered  # the model's own tags come out as text
    for href in re.findall(r'href="([^"]*)"', rendered):
        assert href.startswith(("https:", "http:", "mailto:")) and '"' not in href, rendered
    assert not re.search(r"<[^>]*\son\w+=", rendered), rendered  # no event handler inside any real tag


def test_images_are_not_fetched():
    rendered = to_html("![tracker](https://example.com/pixel.png)")
    assert "<img" not in rendered


@pytest.mark.slow
@pytest.mark.browser
def test_nothing_hostile_runs_in_chromium():
    page_html = "".join(f"<div class='card'>{to_html(attack)}</div>" for attack in HOSTILE.values())
    with browser.launch() as chromium:
        page = chromium.new_page()
        page.set_content(f"<html><body>{page_html}</body></html>", wait_until="load")
        page.wait_for_timeout(500)  # an image error or an svg load would have fired by now
        # The browser's own reading of every link target left: only web and mail addresses.
        assert set(page.evaluate("[...document.querySelectorAll('a')].map(a => a.protocol)")) <= {"https:", "http:"}
        for link in page.locator("a").all():
            link.hover()
            link.click()  # a javascript: link would run here, in the page (these open a new tab instead)
        page.wait_for_timeout(300)
        assert page.evaluate("window.pwned") is None and page.locator(".card").count() == len(HOSTILE)
        assert page.evaluate("document.querySelectorAll('script, img, svg, iframe').length") == 0
