"""README rendering: CommonMark (plus tables and strikethrough) to HTML, then sanitised. Pure.

Raw HTML in the Markdown is not rendered at all (markdown-it's ``html`` option is off), and the
output passes through nh3 (ammonia) with an allow-list of tags, attributes and URL schemes, so
``javascript:`` links, event handlers, ``<script>``, ``<iframe>`` and ``<style>`` never reach a browser.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

MAX_README_BYTES = 256 * 1024

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _parser() -> MarkdownIt:
    # linkify stays off (it needs an extra package); html off: raw HTML is shown as text.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(source: str) -> str:
    """Safe HTML for ``source``: rendered, then sanitised; links get ``rel="nofollow noopener noreferrer"``."""
    html = _parser().render(source)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )
