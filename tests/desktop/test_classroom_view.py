"""The Classroom view: a teacher's own classes only (admins all), every LAN address with its QR
code, and pywebview's bridge allowed (CSP) only for the window's own requests over loopback."""

from __future__ import annotations

import pytest

from appliance.lan import lan_addresses
from tests.conftest import ApiClient, LiveServer
from tests.desktop.conftest import lan_client

pytestmark = pytest.mark.usefixtures("fast_passwords")
WINDOW_AGENT = {"User-Agent": "Mozilla/5.0 (compatible; LabrunnerDesktop/1)", "Accept": "text/html"}


async def new_class(teacher: ApiClient, name: str) -> dict[str, object]:
    reply = await teacher.post("/api/classes", json={"name": name})
    assert reply.status == 201, reply
    return dict(reply.json)


def spaced(code: object) -> str:
    text = str(code)
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


async def test_a_teacher_sees_their_own_classes_and_every_lan_address(both_sides: LiveServer) -> None:
    tina = await both_sides.make_user("teacher")
    first = await new_class(tina, "7B Computing")
    second = await new_class(tina, "8A Computing")
    other = await new_class(await both_sides.make_user("teacher"), "Someone else's class")

    page = await tina.get("/teach/classroom")
    assert page.status == 200, page
    assert spaced(first["join_code"]) in page.text and "7B Computing" in page.text
    assert "8A Computing" in page.text  # in the chooser
    assert spaced(other["join_code"]) not in page.text and "Someone else" not in page.text
    # Opened over loopback (the window): the machine's LAN addresses, each with its QR code.
    port = both_sides.test_server.port
    for address in lan_addresses():
        assert f"http://{address}:{port}/" in page.text
    assert page.text.count("<svg") == len(lan_addresses())

    chosen = await tina.get(f"/teach/classroom?class={second['id']}")
    assert spaced(second["join_code"]) in chosen.text
    # Another teacher's class cannot be chosen: not found, its code nowhere.
    theirs = await tina.get(f"/teach/classroom?class={other['id']}", headers={"Accept": "text/html"})
    assert theirs.status == 404 and spaced(other["join_code"]) not in theirs.text


async def test_an_admin_sees_every_class(both_sides: LiveServer) -> None:
    theirs = await new_class(await both_sides.make_user("teacher"), "Their class")
    admin = await both_sides.make_user("admin")
    page = await admin.get(f"/teach/classroom?class={theirs['id']}")
    assert page.status == 200 and spaced(theirs["join_code"]) in page.text


async def test_students_and_visitors_do_not_get_the_classroom_view(both_sides: LiveServer) -> None:
    code = (await new_class(await both_sides.make_user("teacher"), "7B"))["join_code"]
    student = await both_sides.make_user("student")
    reply = await student.get("/teach/classroom", headers={"Accept": "text/html"})
    assert reply.status == 404 and spaced(code) not in reply.text
    visitor = await both_sides.client().get("/teach/classroom")
    assert visitor.status == 302 and visitor.headers["Location"].startswith("/login")


async def test_on_the_network_the_page_shows_its_own_address(both_sides: LiveServer) -> None:
    tina = await both_sides.make_user("teacher")
    await new_class(tina, "7B")
    outside = lan_client(both_sides)
    outside.use_session(str(tina.session_cookie))
    # Opened by a name (the school's DNS): students type what the teacher typed.
    name = f"labrunner.school.example:{both_sides.test_server.port}"
    page = await outside.get("/teach/classroom", headers={"Host": name})
    assert page.status == 200, page
    assert f"http://{name}/" in page.text and "127.0.0.1" not in page.text
    assert page.text.count("<svg") == 1


async def test_only_the_window_over_loopback_may_run_the_bridge(both_sides: LiveServer) -> None:
    tina = await both_sides.make_user("teacher")
    plain = await tina.get("/teach/classroom")
    assert "unsafe-eval" not in plain.headers["Content-Security-Policy"]
    window = await tina.get("/teach/classroom", headers=WINDOW_AGENT)
    assert "script-src 'self' 'unsafe-eval'" in window.headers["Content-Security-Policy"]
    # Pretending to be the window from the network changes nothing.
    outside = lan_client(both_sides)
    outside.use_session(str(tina.session_cookie))
    spoofed = await outside.get("/teach/classroom", headers=WINDOW_AGENT)
    assert spoofed.status == 200 and "unsafe-eval" not in spoofed.headers["Content-Security-Policy"]
    # Other pages never relax it, not even for the window.
    teach = await tina.get("/teach", headers=WINDOW_AGENT)
    assert "unsafe-eval" not in teach.headers["Content-Security-Policy"]


async def test_the_teachers_page_links_to_the_classroom_view(both_sides: LiveServer) -> None:
    tina = await both_sides.make_user("teacher")
    page = await tina.get("/teach")
    assert 'href="/teach/classroom"' in page.text
