"""Red-team attacks on the window's bridge (pywebview's js_api): a page that is not one of the
appliance's own may call nothing, and `open_in_browser` opens pages of the appliance only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ui.desktop import bridge as bridge_module
from ui.desktop.bridge import Bridge

BASE = "http://127.0.0.1:8080"


class FakeWindow:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def get_current_url(self) -> str | None:
        return self.url


def make_bridge(url: str | None, opened: list[str], monkeypatch: pytest.MonkeyPatch) -> Bridge:
    monkeypatch.setattr(bridge_module.webbrowser, "open", opened.append)
    monkeypatch.setattr(bridge_module, "open_folder", lambda path: opened.append(f"folder:{path}"))
    session: Any = SimpleNamespace(base_url=BASE, settings=SimpleNamespace(data_dir="/data"))
    made = Bridge(session)
    made._attach(FakeWindow(url))
    return made


@pytest.mark.parametrize(
    "url",
    [
        None,  # the loading view (pywebview's own HTML, no URL yet)
        "about:blank",
        "https://example.org/",
        "http://127.0.0.1:8080.evil.example/",  # the base as a prefix of another host
        "http://127.0.0.1:80801/",  # of another port
        "http://127.0.0.1:8080@evil.example/",  # as a user name
        "http://localhost:8080/teach",  # the same server by another name is not the window's page
        "file:///etc/passwd",
    ],
)
def test_a_page_that_is_not_the_appliances_may_call_nothing(url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    made = make_bridge(url, opened, monkeypatch)
    for call in (
        lambda: made.open_in_browser("/teach"),
        made.open_data_folder,
        made.backup_start,
        made.backup_status,
    ):
        with pytest.raises(PermissionError):
            call()
    assert opened == []
    assert made._backup["state"] == "idle"


@pytest.mark.parametrize(
    "path",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example\\share",
        "",
        None,
        ["/teach"],
    ],
)
def test_open_in_browser_opens_pages_of_the_appliance_only(path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    made = make_bridge(f"{BASE}/teach/classroom", opened, monkeypatch)
    with pytest.raises(ValueError):
        made.open_in_browser(path)
    assert opened == []


def test_the_appliances_own_page_opens_itself_in_the_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    made = make_bridge(f"{BASE}/teach/classroom?class=2", opened, monkeypatch)
    monkeypatch.setattr(bridge_module.threading, "Thread", _InlineThread)
    assert made.open_in_browser("/teach/classroom?class=2")
    assert made.open_data_folder()
    assert opened == [f"{BASE}/teach/classroom?class=2", "folder:/data"]


class _InlineThread:
    def __init__(self, target: Any, args: tuple[Any, ...] = (), **_: Any) -> None:
        self._run = lambda: target(*args)

    def start(self) -> None:
        self._run()
