"""Task instructions as HTML: a small, safe subset of Markdown.

No Markdown library is among the dependencies, and instructions are rendered from
playbook templates that may carry account data, so everything is escaped first and
only this subset becomes markup: headings, paragraphs, bullet and numbered lists,
fenced code, `code`, **bold**, *italic*, and [links](https://...) to http(s) and mailto.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(((?:https?://|mailto:)[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?!\*)|(?<![_\w])_(?!\s)(.+?)(?<!\s)_(?![_\w])")


def _emphasis(html: str) -> str:
    html = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", html)
    return _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", html)


def _inline(line: str) -> str:
    """Inline markup on one line of raw text (without NUL characters); returns escaped HTML.

    Code spans and finished links are set aside behind NUL-delimited placeholders, so that
    emphasis never reaches inside them (a `*` or `_` in a URL once put `<em>` into the href).
    """
    html = str(escape(line))
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"\x00{len(kept) - 1}\x00"

    html = _CODE.sub(lambda m: keep(f"<code>{m.group(1)}</code>"), html)
    html = _LINK.sub(
        lambda m: keep(f'<a href="{m.group(2)}" rel="noopener noreferrer" target="_blank">{_emphasis(m.group(1))}</a>'),
        html,
    )
    html = _emphasis(html)

    def expand(text: str) -> str:  # a link's text may hold a code span
        return re.sub("\x00(\\d+)\x00", lambda m: expand(kept[int(m.group(1))]), text)

    return expand(html)


def render(source: str | None) -> Markup:
    if not source:
        return Markup("")
    # NUL is no text anyone writes, and _inline's placeholders use it: data holding
    # "\x000\x00" would otherwise stand for a code span (or fail the page).
    source = source.replace("\x00", "")
    out: list[str] = []
    paragraph: list[str] = []
    list_tag: str | None = None
    code: list[str] | None = None

    def close_paragraph():
        if paragraph:
            out.append("<p>" + _inline(" ".join(line.strip() for line in paragraph)) + "</p>")
            paragraph.clear()

    def close_list():
        nonlocal list_tag
        if list_tag:
            out.append(f"</{list_tag}>")
            list_tag = None

    for line in source.replace("\r\n", "\n").split("\n"):
        if code is not None:
            if line.strip().startswith("```"):
                out.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            close_paragraph()
            close_list()
            code = []
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        numbered = None if bullet else _NUMBERED.match(line)
        if heading:
            close_paragraph()
            close_list()
            level = min(len(heading.group(1)) + 3, 6)  # page headings stay the biggest
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif item := bullet or numbered:
            close_paragraph()
            tag = "ul" if bullet else "ol"
            if list_tag != tag:
                close_list()
                out.append(f"<{tag}>")
                list_tag = tag
            out.append(f"<li>{_inline(item.group(1))}</li>")
        elif not line.strip():
            close_paragraph()
            close_list()
        else:
            if list_tag and line.startswith((" ", "\t")) and out[-1].endswith("</li>"):
                out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
                continue
            close_list()
            paragraph.append(line)
    if code is not None:
        out.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
    close_paragraph()
    close_list()
    return Markup("\n".join(out))
