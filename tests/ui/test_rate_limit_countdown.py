"""After a 429 the page counts down to when the student may try again and then gives the button
back (issue 11). The server's 429 is real; the page's clock is Playwright's, so the minute-long
wait takes no time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LAPTOP, echo
from tests.ui.helpers import log_in, type_code

pytestmark = pytest.mark.browser

COUNTDOWN = re.compile(r"You may start 1 run a minute\. You can run again in (\d+) s\.")


async def test_run_counts_down_after_a_429_and_comes_back(
    server_factory: Callable[..., Any], browser: Any, shot: Callable[..., Any]
) -> None:
    server = await server_factory(app_options=echo(), runs_per_user_per_minute=1)
    student = await server.make_user("student")
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await log_in(page, server.url, student.username)
    await page.goto(f"{server.url}/scratch")
    await type_code(page, "print('hello')")
    button, status = page.locator("#run-button"), page.locator("#job-status")
    await button.click()
    await expect(page.locator("#output-section")).to_be_visible()
    await expect(button).to_be_enabled()

    await page.clock.install()
    await button.click()
    await expect(status).to_have_text(COUNTDOWN)
    await expect(button).to_be_disabled()
    first = int(COUNTDOWN.fullmatch(await status.inner_text()).group(1))  # type: ignore[union-attr]
    assert 30 <= first <= 60, first  # the first run was moments ago: most of the minute is left
    await shot(page, "run-countdown")
    await page.clock.run_for(5_000)
    await expect(status).to_have_text(f"You may start 1 run a minute. You can run again in {first - 5} s.")
    await expect(button).to_be_disabled()
    await page.clock.run_for((first - 5) * 1000)
    await expect(status).to_have_text("You can run again now.")
    await expect(button).to_be_enabled()
    await context.close()


async def test_login_counts_down_after_too_many_failures(server_factory: Callable[..., Any], browser: Any) -> None:
    server = await server_factory(app_options=echo(), login_max_failures_per_address=1)
    student = await server.make_user("student")
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await page.clock.install()
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Username").fill(student.username)
    await page.get_by_label("Password").fill("not-the-password")
    button, error = page.get_by_role("button", name="Log in"), page.locator("#login-error")
    await button.click()
    await expect(error).to_have_text(re.compile("wrong username or password", re.I))
    await button.click()
    countdown = re.compile(r"Too many failed logins\. You can log in again in (\d+) s\.")
    await expect(error).to_have_text(countdown)
    await expect(button).to_be_disabled()
    left = int(countdown.fullmatch(await error.inner_text()).group(1))  # type: ignore[union-attr]
    await page.clock.run_for(left * 1000)
    await expect(error).to_have_text("You can log in again now.")
    await expect(button).to_be_enabled()
    await context.close()
