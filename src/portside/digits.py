"""Whole numbers as headers, URLs, forms and file names write them: ASCII digits only."""

from __future__ import annotations


def parse_digits(text: str) -> int | None:
    """The number ``text`` writes in ASCII digits (``"0042"`` is 42), else ``None``.

    ``str.isdigit`` also takes digits that ``int`` refuses (``"²"``: ``int`` raises), and ``int``
    takes other scripts' digits, signs, spaces and underscores; in a header, a query, a form or a
    file name none of those is a number.
    """
    return int(text) if text.isascii() and text.isdigit() else None
