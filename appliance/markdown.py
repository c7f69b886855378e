"""A deliberately small Markdown subset rendered to HTML with everything escaped first.

Enough for legal texts and problem statements (headings, paragraphs, lists, emphasis, code);
raw HTML in the source is shown as text, so nothing a teacher or admin types can inject script.
A problem's assets can be shown by name: `![alt](diagram.png)` becomes an image and
`[text](data.csv)` a link, but only for names in the `assets` map the caller passes (name → URL
on this appliance); any other target stays plain text, so a statement cannot point elsewhere.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![*\w])\*([^*]+)\*(?![*\w])"), r"<em>\1</em>"),
]
_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+(.*)$")
# Matched on already-escaped text: the target is compared with the escaped asset names.
_ASSET_REF = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _inline(text: str, assets: Mapping[str, str] | None = None) -> str:
    out = html.escape(text, quote=True)
    if assets:
        out = _ASSET_REF.sub(lambda match: _asset_ref(match, assets), out)
    for pattern, replacement in _INLINE:
        out = pattern.sub(replacement, out)
    return out


def _asset_ref(match: re.Match[str], assets: Mapping[str, str]) -> str:
    image, label, target = match.groups()
    url = assets.get(html.unescape(target))
    if url is None:
        return match.group(0)
    if image:
        return f'<img src="{html.escape(url, quote=True)}" alt="{label}">'
    return f'<a href="{html.escape(url, quote=True)}">{label}</a>'


def render(source: str, assets: Mapping[str, str] | None = None) -> str:
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    ordered = False
    code: list[str] | None = None

    def flush() -> None:
        nonlocal items
        if paragraph:
            blocks.append("<p>" + " ".join(_inline(line.strip(), assets) for line in paragraph) + "</p>")
            paragraph.clear()
        if items:
            tag = "ol" if ordered else "ul"
            blocks.append(f"<{tag}>" + "".join(f"<li>{item}</li>" for item in items) + f"</{tag}>")
            items = []

    for line in source.splitlines():
        if code is not None:
            if line.strip().startswith("```"):
                blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            code = []
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        item = _LIST_ITEM.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2), assets)}</h{level}>")
        elif item:
            if paragraph:
                flush()
            ordered = line.strip()[0].isdigit()
            items.append(_inline(item.group(1), assets))
        elif not line.strip():
            flush()
        elif items and line.startswith(("  ", "\t")):
            items[-1] += " " + _inline(line.strip(), assets)
        else:
            if items:
                flush()
            paragraph.append(line)
    if code is not None:
        blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "\n".join(blocks)
