"""Steps the browser tests share: logging in, typing into the code editor, waiting for results."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import DEFAULT_PASSWORD

JOB_TIMEOUT_MS = 90_000  # a sandbox job on a busy 2-core machine, with room to spare


async def log_in(page: Any, base_url: str, username: str, password: str = DEFAULT_PASSWORD) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(r"/(teach)?$"))


async def type_code(page: Any, code: str, *, paste: bool = False) -> None:
    """Type into the CodeMirror editor as a student would, once it has loaded the saved draft; or
    paste it, as is (typing nested blocks would get the editor's auto-indent on top of theirs)."""
    editor = page.locator(".cm-content[contenteditable='true']").first
    await editor.wait_for()
    await editor.click()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.press("Delete")
    if paste:
        await page.keyboard.insert_text(code)
    else:
        await page.keyboard.type(code)


async def scratchpad_with(
    server: Any, browser: Any, viewport: dict[str, int], code: str, *, paste: bool = False
) -> tuple[Any, Any]:
    """A new student (their API client) and their scratchpad page, logged in, `code` in the editor."""
    student = await server.make_user("student")
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await log_in(page, server.url, student.username)
    await page.goto(f"{server.url}/scratch")
    await type_code(page, code, paste=paste)
    return student, page


async def editor_text(page: Any) -> str:
    """The editor's text, read from its rendered lines (all are rendered for a short document)."""
    script = "() => Array.from(document.querySelectorAll('.cm-content .cm-line'), (l) => l.textContent).join('\\n')"
    return str(await page.evaluate(script))


async def wait_saved(page: Any, timeout_ms: float = 30_000) -> None:
    """Wait until the page says its draft is on the server (and say what it shows instead if not)."""
    try:
        await page.locator("#save-state[data-state='saved']").wait_for(timeout=timeout_ms)
    except Exception as exc:
        state = await page.locator("#save-state").get_attribute("data-state")
        text = await page.locator("#save-state").inner_text()
        raise AssertionError(f"the draft was not saved: state {state!r}, shown {text!r}") from exc
