"""README rendering: Markdown in, sanitised HTML out, whatever the README holds."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.registry.markdown import ALLOWED_TAGS, render_markdown

SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def tags_of(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.found


def assert_safe(html: str) -> None:
    for tag, attributes in tags_of(html):
        assert tag in ALLOWED_TAGS, tag
        for name, value in attributes:
            assert not name.startswith("on"), (tag, name)
            assert name not in ("style", "srcdoc", "formaction"), (tag, name)
            if name in ("href", "src"):
                # As a browser reads it: a scheme only if the URL starts with one (after trimming).
                match = SCHEME.match((value or "").strip())
                scheme = match.group(1).lower() if match else ""
                assert scheme in ("", "http", "https", "mailto"), (tag, value)


def test_markdown_is_rendered() -> None:
    html = render_markdown("# Title\n\nSome **bold** and `code`.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<ul>" in html and "<li>one</li>" in html
    assert "<table>" in html and "<td>1</td>" in html


def test_code_blocks_keep_their_language_class() -> None:
    assert '<code class="language-python">' in render_markdown("```python\nprint(1)\n```\n")


def test_links_get_rel_and_keep_safe_urls() -> None:
    html = render_markdown("[docs](https://example.invalid/a?b=1) <mailto:ops@example.invalid>")
    assert '<a href="https://example.invalid/a?b=1" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'href="mailto:ops@example.invalid"' in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](  javascript:alert(1))",
        "[x](java&#09;script:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "![x](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<iframe src="https://example.invalid"></iframe>',
        "<style>body{display:none}</style>",
        '<div style="position:fixed" onclick="x()">x</div>',
        "<svg><script>alert(1)</script></svg>",
        "<form action=x><input name=a></form>",
        "[x](vbscript:msgbox(1))",
        '<a href="https://ok.invalid" onmouseover="x()">x</a>',
    ],
)
def test_hostile_input_is_defused(hostile: str) -> None:
    html = render_markdown(hostile)
    assert_safe(html)
    assert "<script" not in html and "<iframe" not in html and "<style" not in html


def test_raw_html_is_shown_as_text() -> None:
    assert render_markdown("<b>x</b>") == "<p>&lt;b&gt;x&lt;/b&gt;</p>\n"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>\"'=/:[]()!&#;abcjsvrpt* \n`-")), max_size=120))
def test_any_text_renders_safely(source: str) -> None:
    assert_safe(render_markdown(source))
