"""Markdown (CommonMark, by markdown-it-py) rendered to HTML for legal texts and problem statements.

Raw HTML in the source is shown as text, so nothing a teacher or admin types can inject script.
A problem's assets can be shown by name: `![alt](diagram.png)` becomes an image and
`[text](data.csv)` a link, but only for names in the `assets` map the caller passes (name → URL
on this appliance); any other target (another path, a remote URL, `javascript:`, `data:`) is no
link or image and stays plain text, so a statement cannot point elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from markdown_it import MarkdownIt


class _AssetsOnly(MarkdownIt):
    """CommonMark without raw HTML, whose links and images may only name the given assets.

    markdown-it hands every link, image, autolink and reference target to `normalizeLink` and
    renders it only if `validateLink` accepts the result: here a target that names an asset
    becomes that asset's URL, and nothing else is accepted.
    """

    def __init__(self, assets: Mapping[str, str]) -> None:
        super().__init__("commonmark", {"html": False})
        self._assets = dict(assets)
        self._urls = frozenset(self._assets.values())

    def normalizeLink(self, url: str) -> str:
        return self._assets.get(url, "")

    def validateLink(self, url: str) -> bool:
        return url in self._urls


def render(source: str, assets: Mapping[str, str] | None = None) -> str:
    return _AssetsOnly(assets or {}).render(source)
