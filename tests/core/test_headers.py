"""Security headers on every response, errors included."""

from __future__ import annotations

from tests.conftest import ApiClient


async def test_security_headers_on_success_and_error(anon: ApiClient, make_user) -> None:
    teacher = await make_user("teacher")
    replies = [
        await anon.get("/api/legal/terms"),  # 200
        await anon.get("/api/classes"),  # 401
        await anon.get("/api/no-such-route"),  # 404 from the router
        await teacher.put("/api/classes", json={}),  # 405
        await teacher.post("/api/classes", data=b"{", headers={"Content-Type": "application/json"}),  # 400
        await teacher.post("/api/classes", data=b"x", headers={"Content-Type": "text/plain"}),  # 415
        await anon.get("/terms"),  # an HTML page
    ]
    assert [r.status for r in replies] == [200, 401, 404, 405, 400, 415, 200]
    for reply in replies:
        where = f"{reply.method} {reply.path} ({reply.status})"
        assert reply.headers.get("X-Content-Type-Options") == "nosniff", where
        assert reply.headers.get("X-Frame-Options") == "DENY", where
        assert "frame-ancestors 'none'" in reply.headers.get("Content-Security-Policy", ""), where
        if reply.path.startswith("/api/"):
            assert reply.headers.get("Cache-Control") == "no-store", where
        if reply.status >= 400:
            assert reply.headers["Content-Type"].startswith("application/json"), where
