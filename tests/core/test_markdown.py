"""The Markdown of legal texts and problem statements: CommonMark, no raw HTML, links and images
only to the problem's own assets (named in the map the caller passes)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from appliance import markdown

ASSETS = {
    "d.png": "/assets/0123abcd/d.png",
    "data.csv": "/assets/4567ef01/data.csv",
    "a&b.csv": "/assets/89ab/a%26b.csv?v=1&x=2",
}


class _Elements(HTMLParser):
    """The start tags (with attributes) and the text of a rendered fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data


def parsed(source: str, assets: dict[str, str] | None = ASSETS) -> _Elements:
    elements = _Elements()
    elements.feed(markdown.render(source, assets))
    elements.close()
    return elements


def tag_names(source: str, assets: dict[str, str] | None = ASSETS) -> list[str]:
    return [tag for tag, _ in parsed(source, assets).tags]


# --- what the hand-written renderer got wrong ------------------------------------------------------


def test_markup_inside_code_is_literal() -> None:
    out = markdown.render("`**x**`")
    assert "<code>**x**</code>" in out and "<strong>" not in out, out


def test_image_alt_is_the_plain_text_of_its_markup() -> None:
    images = [attrs for tag, attrs in parsed("![a *b*](d.png)").tags if tag == "img"]
    assert images == [{"src": ASSETS["d.png"], "alt": "a b"}]


def test_an_ordered_list_then_a_bullet_list_are_two_lists() -> None:
    assert tag_names("1. one\n- two") == ["ol", "li", "ul", "li"]


# --- the security contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "text <script>alert(1)</script> and <img src=x onerror=alert(1)> inline",
        "<div onclick=alert(1)>\n\nblock\n\n</div>",
    ],
)
def test_raw_html_is_shown_as_text(source: str) -> None:
    elements = parsed(source)
    assert {tag for tag, _ in elements.tags} <= {"p"}, elements.tags
    for snippet in ("<script>", "<img src=x onerror=alert(1)>", "<div onclick=alert(1)>"):
        if snippet in source:
            assert snippet in elements.text


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x](<javascript:alert(1)>)",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](https://evil.example/d.png)",
        "[x](//evil.example/d.png)",
        "<https://evil.example/>",
        "<someone@evil.example>",
        "https://evil.example/ www.evil.example",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "[x][r]\n\n[r]: https://evil.example/",
        "[x](other.csv)",
        "[x](/api/problems)",  # same-site paths are not links either: only asset names are
        "[x](/assets/0123abcd/d.png)",  # an asset's URL is not its name
    ],
)
def test_only_asset_names_are_links(source: str) -> None:
    assert "a" not in tag_names(source)
    assert "a" not in tag_names(source, None)


@pytest.mark.parametrize(
    "source",
    [
        "![x](https://evil.example/d.png)",
        "![x](//evil.example/d.png)",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "![x](javascript:alert(1))",
        "![x](other.png)",
        "![x](/favicon.svg)",
        "![x](/assets/0123abcd/d.png)",
        "![x][r]\n\n[r]: https://evil.example/d.png",
    ],
)
def test_only_asset_names_are_images(source: str) -> None:
    assert "img" not in tag_names(source)
    assert "img" not in tag_names(source, None)


def test_assets_are_shown_by_name() -> None:
    elements = parsed("See ![the diagram](d.png), [the data](data.csv) and [this](a&b.csv).")
    assert elements.tags == [
        ("p", {}),
        ("img", {"src": ASSETS["d.png"], "alt": "the diagram"}),
        ("a", {"href": ASSETS["data.csv"]}),
        ("a", {"href": ASSETS["a&b.csv"]}),
    ]
    assert elements.text.strip() == "See , the data and this."
    # Without the map (legal texts) the same names are plain text.
    assert tag_names("![the diagram](d.png) [the data](data.csv)", None) == ["p"]


def test_the_everyday_subset() -> None:
    source = "# Title\n\nSome *it* and **bold**.\n\n- a\n- b\n\n```\nif a < b:\n```\n"
    assert tag_names(source) == ["h1", "p", "em", "strong", "ul", "li", "li", "pre", "code"]
    assert "if a &lt; b:" in markdown.render(source)
