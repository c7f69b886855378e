"""The UI's files and pages without a browser: every page has its script, nothing loads from
another site, no inline scripts (the CSP forbids them), and the vendored editor matches its recipe."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import REPO_ROOT
from tests.ui.conftest import make_room, no_docker

UI = REPO_ROOT / "ui"
PAGES = UI / "templates" / "pages"
SCRIPTS = UI / "static" / "js"
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""")
# Every module specifier in a script: `import … from "x"`, `export … from "x"`, `import "x"` and
# dynamic `import("x")`. Each must name a file of this appliance ("./", "../" or "/static/…").
# (Not a word inside a string, such as the path "/api/problems/import".)
IMPORT_SPECIFIER = re.compile(r"""(?<![\w$./-])(?:from|import)\s*\(?\s*(["'`])([^"'`\n]*)\1""")
# A dynamic import of anything but a string literal (a variable could hold any address).
COMPUTED_IMPORT = re.compile(r"""(?<![\w$./-])import\s*\(\s*(?!["'])""")


def foreign_imports(text: str) -> list[str]:
    """The module specifiers in `text` that do not name a file of this appliance."""
    found = [spec for _, spec in IMPORT_SPECIFIER.findall(text) if not re.match(r"\.{1,2}/|/(?!/)", spec)]
    return found + [match.group() for match in COMPUTED_IMPORT.finditer(text)]


def test_every_page_has_its_script() -> None:
    templates = {p.stem for p in PAGES.glob("*.html") if not p.name.startswith("_")}
    # A partial included in several pages (`_name.html`) may load its own `pages/name.js`.
    partials = {p.stem[1:] for p in PAGES.glob("_*.html") if f"/static/js/pages/{p.stem[1:]}.js" in p.read_text()}
    scripts = {p.stem for p in (SCRIPTS / "pages").glob("*.js")}
    assert templates | partials == scripts


def test_nothing_loads_from_elsewhere_and_no_inline_script() -> None:
    files = [*UI.glob("templates/**/*.html"), *SCRIPTS.rglob("*.js"), UI / "static" / "style.css"]
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL.search(text), f"{path} refers to another site"
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{path} has an inline script"
            assert not re.search(r"\son[a-z]+\s*=", text), f"{path} has an inline event handler"
        if path.suffix == ".js":
            html_writes = re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML", text)
            assert not html_writes, f"{path} writes HTML from strings"
            assert not foreign_imports(text), f"{path} imports from another site: {foreign_imports(text)}"


@pytest.mark.parametrize(
    "line",
    [
        'import { EditorView } from "https://cdn.example.org/codemirror.js";',
        "import x from 'http://cdn.example.org/x.js';",
        'import {\n  a,\n  b,\n} from "//cdn.example.org/x.js";',
        'export { a } from "https://cdn.example.org/x.js";',
        'import "//cdn.example.org/polyfill.js";',
        "import 'https://cdn.example.org/polyfill.js';",
        'const mod = await import("https://cdn.example.org/x.js");',
        "const mod = await import ( 'data:text/javascript,alert(1)' );",
        "const mod = await import(`https://cdn.example.org/${name}.js`);",
        "const mod = await import(address);",
        'import lib from "lodash";',  # a bare name: resolved by an import map, or nowhere
    ],
)
def test_foreign_imports_are_found(line: str) -> None:
    assert foreign_imports(line), line


@pytest.mark.parametrize(
    "line",
    [
        'import { api } from "../api.js";',
        "import { h } from './dom.js';",
        'import "../app.js";',
        'import { createEditor } from "/static/vendor/codemirror.js";',
        'const mod = await import("./results.js");',
        'showError(error, { message: "Choose a file to import from your computer." });',
        'await api("POST", "/api/problems/import", body);',
        'await api("POST", `/api/classes/${id}/roster/import`, text);',
        "const label = `Data from ${source}`;",
    ],
)
def test_local_imports_pass(line: str) -> None:
    assert foreign_imports(line) == [], line


def test_vendored_editor_matches_its_recipe() -> None:
    lock = json.loads((UI / "editor-src" / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/codemirror"]["version"]
    bundle = UI / "static" / "vendor" / f"codemirror-{version}.js"
    assert bundle.is_file(), "rebuild the editor: cd ui/editor-src && npm ci && npm run build"
    stable = (UI / "static" / "vendor" / "codemirror.js").read_text(encoding="utf-8")
    assert f'"./codemirror-{version}.js"' in stable
    assert sorted(p.name for p in (UI / "static" / "vendor").glob("codemirror-*.js")) == [bundle.name]
    head = bundle.read_text(encoding="utf-8")[:2000]
    assert "@codemirror/view@" + lock["packages"]["node_modules/@codemirror/view"]["version"] in head
    for name in ("package.json", "entry.js", "build.mjs", ".gitignore"):
        assert (UI / "editor-src" / name).is_file(), name
    assert "cd ui/editor-src && npm ci && npm run build" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


async def test_pages_answer_with_html_and_headers(server_factory: Callable[..., Any]) -> None:
    room = await make_room(await server_factory(app_options=no_docker()))
    anonymous = room.server.client()
    login = await anonymous.get("/")
    assert login.status == 200 and login.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in login.headers["Content-Security-Policy"]
    assert login.headers["Cache-Control"] == "no-store"
    assert '<script type="module" src="/static/js/pages/login.js">' in login.text
    for path in ("/scratch", f"/problems/{room.problem_id}", "/teach", "/submissions/1"):
        reply = await anonymous.get(path)
        assert reply.status == 302 and reply.headers["Location"].startswith("/login?next="), (path, reply)

    student_pages = ["/", f"/problems/{room.problem_id}", "/scratch", "/submissions", "/submissions/5"]
    for path in student_pages:
        reply = await room.student.get(path)
        assert reply.status == 200 and "<h1" in reply.text, (path, reply)
    teacher_pages = [
        "/teach",
        f"/teach/classes/{room.class_id}",
        f"/teach/classes/{room.class_id}/print",
        "/teach/problems/new",
        f"/teach/problems/{room.problem_id}",
        "/teach/submissions?problem_id=1",
        f"/problems/{room.problem_id}",
    ]
    for path in teacher_pages:
        reply = await room.teacher.get(path)
        assert reply.status == 200, (path, reply)
    assert (await room.teacher.get("/")).headers["Location"] == "/teach"
    assert (await room.student.get("/submissions")).status == 200
    for path in ("/teach", f"/teach/classes/{room.class_id}", "/teach/problems/x", f"/problems/{room.problem_id}9"):
        reply = await room.student.get(path)
        assert reply.status == 404 and "Page not found" in reply.text, (path, reply)
    assert (await room.outsider.get(f"/problems/{room.problem_id}")).status == 404


async def test_statement_is_sanitised_and_shows_its_assets(server_factory: Callable[..., Any]) -> None:
    room = await make_room(await server_factory(app_options=no_docker()))
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    form = aiohttp.FormData()
    form.add_field("file", png, filename="map.png", content_type="image/png")
    uploaded = await room.teacher.post(f"/api/problems/{room.problem_id}/assets", data=form)
    assert uploaded.status == 201, uploaded
    statement = "Look: ![the map](map.png) <script>alert(1)</script> ![x](http://elsewhere.example/x.png)"
    assert (await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"statement": statement})).status == 200
    page = (await room.student.get(f"/problems/{room.problem_id}")).text
    assert re.search(rf'<img src="{re.escape(uploaded.json["url"])}" alt="the map"\s*/?>', page), page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'src="http://elsewhere' not in page
