"""A teacher exports a student's data and then erases the student, from the class page, in a real
browser; each step asks first. No Docker: the "sandbox" echoes the code (EchoExecutor)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, echo, make_room
from tests.ui.helpers import log_in
from tests.ui.test_classroom_api import submit

pytestmark = pytest.mark.browser


async def test_teacher_exports_then_erases_a_student(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    server = await server_factory(app_options=echo())
    room = await make_room(server)
    student = room.student
    code = f"print('homework of {student.username}')"
    await submit(student, room.problem_id, code)

    context = await browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = await context.new_page()
    await log_in(page, server.url, room.teacher.username)
    await page.goto(f"{server.url}/teach/classes/{room.class_id}")
    row = page.locator("#roster tr", has_text=student.username)

    # Export: a dialog says what the file holds; cancelling downloads nothing.
    await row.get_by_role("button", name=f"Export the data of {student.username}").click()
    dialog = page.get_by_role("dialog", name="Export a student's data")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(student.username)
    await shot(page, "student-export-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await row.get_by_role("button", name=f"Export the data of {student.username}").click()
    async with page.expect_download() as waiting:
        await dialog.get_by_role("button", name="Download ZIP").click()
    download = await waiting.value
    assert download.suggested_filename == f"labrunner-student-{student.user_id}.zip"
    with zipfile.ZipFile(io.BytesIO(open(await download.path(), "rb").read())) as bundle:  # noqa: ASYNC230
        assert json.loads(bundle.read("profile.json"))["user"]["username"] == student.username
        assert [s["code"] for s in json.loads(bundle.read("submissions.json"))] == [code]
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#roster-status")).to_contain_text("was downloaded")

    # Erase: the username must be typed again; a wrong one erases nothing.
    await row.get_by_role("button", name=f"Erase {student.username}").click()
    erase = page.get_by_role("dialog", name="Erase a student")
    await expect(erase).to_contain_text("cannot be undone")
    await erase.get_by_label("Type the student's name to confirm").fill("someone-else")
    await erase.get_by_role("button", name="Erase for good").click()
    await expect(erase.get_by_role("alert")).to_contain_text(f"Type {student.username} exactly")
    assert (await student.get("/api/me")).status == 200
    await erase.get_by_label("Type the student's name to confirm").fill(student.username)
    await shot(page, "student-erase-dialog")
    await erase.get_by_role("button", name="Erase for good").click()
    await expect(erase).to_be_hidden()
    pseudonym = f"erased #{student.user_id}"
    await expect(page.locator("#roster-status")).to_contain_text(f"{student.username} was erased")
    await expect(page.locator("#roster")).to_contain_text(pseudonym)
    await expect(page.locator("#roster")).not_to_contain_text(student.username)
    await expect(page.locator("#gradebook")).to_contain_text(pseudonym)
    await shot(page, "student-erased")
    # Their session ended at once.
    assert (await student.get("/api/me")).status == 401

    # Erasing them again says so, in the dialog.
    await page.locator("#roster tr", has_text=pseudonym).get_by_role("button", name=f"Erase {pseudonym}").click()
    await erase.get_by_label("Type the student's name to confirm").fill(pseudonym)
    await erase.get_by_role("button", name="Erase for good").click()
    await expect(erase.get_by_role("alert")).to_contain_text("erased already")
    await context.close()
