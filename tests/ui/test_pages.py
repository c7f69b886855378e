"""Every page in a real browser without the sandbox: labels, headings, footer links and fit on a
classroom laptop and a tablet; keyboard use of the editor; drafts that survive a lost
connection, a second tab and a closed tab; and the teacher's roster tools."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.ui.conftest import LAPTOP, TABLET, Room, make_room, no_docker
from tests.ui.helpers import editor_text, log_in, type_code, wait_saved

pytestmark = pytest.mark.browser

# Checked on every page: each form control and the editor has a name a screen reader can say,
# every button says what it does, images have alt text, one h1, the legal links, and nothing
# wider than the window (no sideways scrolling on a tablet).
AUDIT = r"""() => {
  const problems = [];
  const named = (el) =>
    (el.labels && el.labels.length) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!named(el)) problems.push(`unlabelled ${el.tagName} #${el.id}`);
  }
  for (const el of document.querySelectorAll(".cm-content")) {
    if (!el.getAttribute("aria-label")) problems.push("editor without a name");
  }
  for (const el of document.querySelectorAll("button")) {
    if (!(el.textContent.trim() || el.getAttribute("aria-label"))) problems.push(`button without a name #${el.id}`);
  }
  for (const el of document.querySelectorAll("img")) {
    if (!el.hasAttribute("alt")) problems.push(`image without alt ${el.src}`);
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 headings`);
  const foot = [...document.querySelectorAll("footer a")].map((a) => a.getAttribute("href"));
  if (!foot.includes("/terms") || !foot.includes("/privacy")) problems.push("footer lacks the legal links");
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`wider than the window: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  if (document.querySelector("script:not([src])")) problems.push("inline script");
  // WCAG AA contrast of every visible text: 4.5:1, or 3:1 for large text; disabled controls are exempt.
  const rgba = (css) => (css.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgba(getComputedStyle(node).backgroundColor);
      if (a > 0) return [r, g, b].map((v) => v * a + 255 * (1 - a));
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text || !el.getClientRects().length || el.closest("[disabled], .print-only")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest(".visually-hidden")) continue;
    const [r, g, b, a = 1] = rgba(style.color);
    const bg = background(el);
    const fg = [r, g, b].map((v, i) => v * a + bg[i] * (1 - a));
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)} for "${el.textContent.trim().slice(0, 30)}"`);
    }
  }
  return problems;
}"""


async def audit(page: Any, url: str, errors: list[str]) -> None:
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("[aria-busy='true']")).to_have_count(0)
    problems = await page.evaluate(AUDIT)
    assert not problems, f"{url} at {page.viewport_size}: {problems}"
    assert not errors, f"{url}: {errors}"


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


@pytest.fixture
async def quiet_room(server_factory: Callable[..., Any]) -> Room:
    return await make_room(await server_factory(app_options=no_docker()))


async def test_pages_are_labelled_and_fit_laptop_and_tablet(
    quiet_room: Room, browser: Any, shot: Callable[..., Any]
) -> None:
    room, base = quiet_room, quiet_room.server.url
    pages = {
        None: ["/", "/register", "/terms", "/privacy"],
        room.student: ["/", f"/problems/{room.problem_id}", "/scratch", "/submissions"],
        room.teacher: [
            "/teach",
            f"/teach/classes/{room.class_id}",
            f"/teach/classes/{room.class_id}/print",
            "/teach/problems/new",
            f"/teach/problems/{room.problem_id}",
            "/teach/submissions",
        ],
    }
    for viewport, size in (("laptop", LAPTOP), ("tablet", TABLET)):
        for who, paths in pages.items():
            context = await browser.new_context(viewport=size)
            page = await context.new_page()
            errors = watch_errors(page)
            if who is not None:
                await log_in(page, base, who.username)
            for path in paths:
                await audit(page, base + path, errors)
                if viewport == "tablet" and path.startswith(("/problems/", "/teach/classes/")):
                    await shot(page, f"tablet-{path.strip('/').split('/')[0]}-{path.count('/')}")
                if viewport == "laptop" and path in ("/teach", "/scratch", f"/teach/classes/{room.class_id}/print"):
                    await shot(page, f"laptop-{path.strip('/').replace('/', '-')}")
            await context.close()


async def test_keyboard_reaches_and_leaves_the_editor(quiet_room: Room, browser: Any) -> None:
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, quiet_room.server.url, quiet_room.student.username)
    await page.goto(f"{quiet_room.server.url}/problems/{quiet_room.problem_id}")
    await page.locator(".cm-content[contenteditable='true']").wait_for()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to main content"
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.classList.contains('cm-content')"):
            break
    else:
        raise AssertionError("Tab never reached the code editor")
    # In the editor Tab indents (auto-indent and undo work too) ...
    await page.keyboard.type("if True:")
    await page.keyboard.press("Enter")
    await page.keyboard.type("x = 1")
    assert await editor_text(page) == "if True:\n    x = 1"
    await page.keyboard.press("ControlOrMeta+z")
    assert "x = 1" not in await editor_text(page)
    # ... and Escape then Tab moves on, so a keyboard user is never trapped.
    await page.keyboard.press("Escape")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "stdin"
    await context.close()


async def test_drafts_survive_lost_connections_and_second_tabs(
    quiet_room: Room, browser: Any, shot: Callable[..., Any]
) -> None:
    room = quiet_room
    url = f"{room.server.url}/problems/{room.problem_id}"
    context = await browser.new_context(viewport=LAPTOP)
    first = await context.new_page()
    await log_in(first, room.server.url, room.student.username)
    await first.goto(url)
    await type_code(first, "print('one')")
    await wait_saved(first)

    # The Wi-Fi drops: edits stay in the browser, the page says so, and are saved once it is back.
    await context.set_offline(True)
    await first.keyboard.type("  # offline")
    await expect(first.locator("#save-state")).to_contain_text("kept in this browser")
    await shot(first, "draft-offline")
    await context.set_offline(False)
    await wait_saved(first)
    draft = (await room.student.get(f"/api/problems/{room.problem_id}/draft")).json["draft"]
    assert draft["code"] == "print('one')  # offline"

    # A second tab on an older revision may not overwrite newer work: it asks instead.
    second = await context.new_page()
    await second.goto(url)
    await expect(second.locator(".cm-content[contenteditable='true']")).to_have_count(1)
    await first.keyboard.type("\nprint('newer')")
    await wait_saved(first)
    await type_code(second, "print('stale tab')")
    conflict = second.locator("#conflict")
    await expect(conflict).to_be_visible()
    await shot(second, "draft-conflict")
    await second.get_by_role("button", name="Load the newer version").click()
    await expect(conflict).to_be_hidden()
    assert await editor_text(second) == "print('one')  # offline\nprint('newer')"
    await second.close()

    # Offline again and the tab is closed before anything reached the server: reopening the page
    # brings the edit back from the browser's copy and saves it.
    await context.set_offline(True)
    await first.keyboard.type("\n# written offline")
    await first.close()
    await context.set_offline(False)
    third = await context.new_page()
    await third.goto(url)
    await wait_saved(third)
    assert (await editor_text(third)).endswith("# written offline")
    draft = (await room.student.get(f"/api/problems/{room.problem_id}/draft")).json["draft"]
    assert draft["code"].endswith("# written offline")
    await context.close()


async def test_teacher_roster_tools(quiet_room: Room, browser: Any, shot: Callable[..., Any]) -> None:
    room, server = quiet_room, quiet_room.server
    context = await browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await log_in(page, server.url, room.teacher.username)
    await page.goto(f"{server.url}/teach/classes/{room.class_id}")

    await page.get_by_label("Username").fill("new-kid")
    await page.get_by_role("button", name="Add student").click()
    credentials = page.locator("#credentials-rows")
    await expect(credentials).to_contain_text("new-kid")

    roster = "username,password,birthdate\r\nanna-b,,2014-05-06\r\ncarl-d,carl-pass-1,\r\n"
    await page.get_by_label("CSV file").set_input_files(
        {"name": "class.csv", "mimeType": "text/csv", "buffer": roster.encode("utf-8-sig")}
    )
    await page.get_by_role("button", name="Import").click()
    await expect(page.locator("#roster-status")).to_contain_text("2 new accounts")
    await expect(page.locator("#roster tbody tr")).to_have_count(4)

    await page.get_by_role("button", name=f"Reset the password of {room.student.username}").click()
    await expect(credentials.locator("tr")).to_have_count(4)
    await shot(page, "teacher-roster-credentials")
    # "Print login slips" prints the new passwords only, not the rest of the page.
    await page.emulate_media(media="print")
    await page.evaluate("() => { document.body.classList.add('printing-credentials'); window.scrollTo(0, 0); }")
    await expect(page.locator("#roster")).to_be_hidden()
    await expect(page.locator("#credentials-rows")).to_be_visible()
    await shot(page, "login-slips-print", full_page=False)
    await page.evaluate("() => document.body.classList.remove('printing-credentials')")
    await page.emulate_media(media="screen")
    rows = {
        (await row.locator("td").nth(0).inner_text()): (await row.locator("td").nth(1).inner_text())
        for row in await credentials.locator("tr").all()
    }
    assert rows["carl-d"] == "carl-pass-1"
    for username, password in rows.items():
        assert (await server.client().login(username, password)).status == 200, username

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name=re.compile("one column per problem")).click()
    download = await download_info.value
    text = (await download.path()).read_bytes().decode("utf-8-sig")
    header, *students = list(csv.reader(io.StringIO(text)))
    assert header[0] == "username" and len(students) == 4

    await page.goto(f"{server.url}/teach/classes/{room.class_id}/print")
    await expect(page.locator("#join-code")).to_have_text(re.sub(r"(.{4})(?=.)", r"\1 ", room.join_code))
    await shot(page, "join-code-print")
    await context.close()


async def test_logged_out_and_wrong_role_pages(quiet_room: Room, browser: Any) -> None:
    server: LiveServer = quiet_room.server
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await page.goto(f"{server.url}/teach/classes/{quiet_room.class_id}")
    assert page.url.endswith(f"/login?next=%2Fteach%2Fclasses%2F{quiet_room.class_id}")
    await page.get_by_label("Username").fill(quiet_room.student.username)
    await page.get_by_label("Password").fill(quiet_room.student.password)
    await page.get_by_role("button", name="Log in").click()
    # The page asked for is a teacher's: a student gets a plain "not found", not a JSON error.
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await page.goto(f"{server.url}/problems/999999")
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(re.compile("/login$"))
    await context.close()


async def test_view_as_a_student_says_it_is_a_preview(quiet_room: Room, browser: Any) -> None:
    url = quiet_room.server.url
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, url, quiet_room.teacher.username)
    await page.goto(f"{url}/teach/problems/{quiet_room.problem_id}")
    await page.get_by_role("link", name="View as a student").click()
    await page.wait_for_url(re.compile(rf"/problems/{quiet_room.problem_id}$"))
    await expect(page.locator("#preview-note")).to_contain_text("Preview: this is the page your students see")
    await context.close()
    # A student's own page says nothing of the kind.
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, url, quiet_room.student.username)
    await page.goto(f"{url}/problems/{quiet_room.problem_id}")
    await page.locator("#problem-title").wait_for()
    assert await page.locator("#preview-note").count() == 0
    await context.close()
