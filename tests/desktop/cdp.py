"""A small Chrome DevTools Protocol client for the desktop window's page.

Qt WebEngine serves the protocol (QTWEBENGINE_REMOTE_DEBUGGING) but refuses the browser-context
commands Playwright's `connect_over_cdp` sends first ("Browser context management is not
supported"), so the tests talk to the page target directly: evaluate, wait, read the URL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp


class PageError(AssertionError):
    pass


class WindowPage:
    def __init__(self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self._socket = socket
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, port: int, timeout_s: float = 60.0) -> WindowPage:
        """The window's page, once the DevTools endpoint answers."""
        session = aiohttp.ClientSession()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/json") as reply:
                    pages = [t for t in await reply.json(content_type=None) if t.get("type") == "page"]
                if pages:
                    socket = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
                    return cls(session, socket)
            except (aiohttp.ClientError, ValueError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                await session.close()
                raise PageError(f"no DevTools page on port {port} within {timeout_s} s")
            await asyncio.sleep(0.3)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._socket.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = await self._socket.receive(timeout=60)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise PageError(f"the DevTools connection closed ({message.type})")
            data = json.loads(message.data)
            if data.get("id") == message_id:
                if "error" in data:
                    raise PageError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise PageError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll until `expression` is truthy (errors while a page loads count as not yet)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        last: Any = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = await self.evaluate(expression)
            except PageError as error:
                last = error
            else:
                if last:
                    return last
            await asyncio.sleep(0.3)
        url = str(await self.evaluate("location.href"))[:200]
        raise PageError(f"{expression!r} stayed false for {timeout_s} s on {url} (last: {last!r})")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def close(self) -> None:
        await self._socket.close()
        await self._session.close()
