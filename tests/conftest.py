"""Shared fixtures: a real Labrunner server on a real port with a real database per test.

Everything here talks to the appliance the way its users do — over HTTP — so the tests prove
the middlewares, routing, validation and storage together, not mocks of them.

Fixtures
--------
- ``settings_factory(**overrides) -> Settings``: settings on a fresh temporary data dir, with
  the developer's ``LABRUNNER_*`` environment ignored.
- ``server_factory(**overrides) -> LiveServer`` (async): a started server with custom settings.
- ``server -> LiveServer``: a started server with default settings.
- ``make_user(role, username=None, birthdate=None) -> ApiClient`` (async): a logged-in client
  on ``server`` that has accepted the current legal texts. ``LiveServer.make_user`` does the
  same on a server from ``server_factory``.
- ``fast_passwords``: opt-in cheaper scrypt cost for accounts created during the test.
- ``sandbox_ready``: the real sandbox, or a skip (a failure under CI): see tests/requirements.py.
- ``pg_cluster``: the run's own PostgreSQL cluster (tests/pg_cluster.py), started on first use.

Database engine
---------------
``pytest --db=postgresql`` (or ``LABRUNNER_TEST_DB=postgresql``) runs the tests on PostgreSQL:
every settings object gets its own database in the run's cluster (keyed by its data folder, so a
server restarted on the same folder finds its data), dropped when the test ends. The default is
SQLite, a file in the data folder. Tests read and write rows through tests/dbaccess.py, which
serves both; a test about the SQLite file itself is marked ``sqlite_only`` and skipped on
PostgreSQL.

Clients
-------
``ApiClient`` behaves like a browser tab: it keeps cookies (also on IP hosts) and sends
``Origin: <server url>`` on unsafe requests. ``client.with_token(token)`` gives a script-like
client that authenticates with ``Authorization: Bearer`` and sends no cookies and no Origin.
``server.client(local_address="127.0.0.2")`` connects from another loopback address, so the
server sees another client address.
Every request returns a ``Reply`` (status, headers, raw body, ``.json``, ``.error_code``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json as jsonlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from appliance.settings import Settings, load_settings
from tests import dbaccess
from tests.pg_cluster import PgCluster, postgres_bindir
from tests.requirements import require_sandbox, unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PASSWORD = "correct-horse-battery"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "labrunner_session"

_MISSING: Any = object()
_usernames = itertools.count(1)


def unique_username(prefix: str = "user") -> str:
    """A username no other test in this process uses (valid for the username rules)."""
    return f"{prefix}{next(_usernames)}"


def years_ago(years: int, *, today: date | None = None) -> str:
    """An ISO birthdate making someone exactly `years` old today (UTC, like the server)."""
    today = today or datetime.now(UTC).date()
    # Clamp to the 28th so 29 February never produces an invalid date; the age stays `years`.
    return date(today.year - years, today.month, min(today.day, 28)).isoformat()


@dataclass
class Reply:
    """One HTTP response, fully read."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    method: str = ""
    path: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def error(self) -> dict[str, Any] | None:
        """The `error` object of an error reply (None when the body is not the error shape)."""
        try:
            data = self.json
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return data["error"]
        return None

    @property
    def error_code(self) -> str | None:
        error = self.error
        return None if error is None else error.get("code")

    def __repr__(self) -> str:
        snippet = self.body[:400]
        return f"<Reply {self.method} {self.path} -> {self.status} {snippet!r}>"


class ApiClient:
    """A small browser- or script-like HTTP client for one server."""

    def __init__(
        self,
        base_url: str,
        *,
        origin: str | None = _MISSING,
        token: str | None = None,
        cookies: bool = True,
        local_address: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Browsers send Origin on unsafe requests; scripts with tokens usually do not.
        self.origin: str | None = (None if token else self.base_url) if origin is _MISSING else origin
        self.token = token
        jar: aiohttp.abc.AbstractCookieJar = aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
        # `local_address` ("127.0.0.2", ...: loopback is a whole /8) makes the server see another client.
        connector = aiohttp.TCPConnector(local_addr=(local_address, 0)) if local_address else None
        self._session = aiohttp.ClientSession(cookie_jar=jar, connector=connector)
        self._children: list[ApiClient] = []
        # Filled by `LiveServer.make_user`.
        self.user: dict[str, Any] = {}
        self.username: str = ""
        self.password: str = ""

    @property
    def user_id(self) -> int:
        return int(self.user["id"])

    @property
    def session_cookie(self) -> str | None:
        for cookie in self._session.cookie_jar:
            if cookie.key == SESSION_COOKIE:
                return cookie.value
        return None

    def use_session(self, value: str) -> None:
        """Carry this session cookie value (e.g. another client's, to replay it)."""
        self._session.cookie_jar.update_cookies({SESSION_COOKIE: value})

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _MISSING,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request; `path` is relative to the server (or a full URL)."""
        method = method.upper()
        url = path if path.startswith("http") else self.base_url + path
        send: dict[str, str] = {}
        if self.origin is not None and method in UNSAFE_METHODS:
            send["Origin"] = self.origin
        if self.token is not None:
            send["Authorization"] = f"Bearer {self.token}"
        send.update(headers or {})
        kwargs: dict[str, Any] = {"headers": send, "params": params, "allow_redirects": False}
        if json is not _MISSING:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data
        async with self._session.request(method, url, **kwargs) as response:
            body = await response.read()
            return Reply(response.status, response.headers, body, method, path)

    def websocket(self, path: str, *, origin: str | None = _MISSING) -> Any:
        """`async with client.websocket(path) as ws:` as a page of this server opens one (its Origin)."""
        url = (path if path.startswith("http") else self.base_url + path).replace("http", "ws", 1)
        sent_origin = self.base_url if origin is _MISSING else origin
        headers = {} if sent_origin is None else {"Origin": sent_origin}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return self._session.ws_connect(url, headers=headers, autoping=True)

    async def get_capped(self, path: str, *, seconds: float = 2.0, max_bytes: int = 8 << 20) -> Reply:
        """GET that stops reading after `seconds` or `max_bytes` (for event streams and long polls)."""
        url = path if path.startswith("http") else self.base_url + path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        chunks: list[bytes] = []
        size = 0
        async with self._session.get(url, headers=headers, allow_redirects=False) as response:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while size < max_bytes and (left := deadline - loop.time()) > 0:
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), left)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return Reply(response.status, response.headers, b"".join(chunks), "GET", path)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def login(self, username: str, password: str) -> Reply:
        return await self.post("/api/auth/login", json={"username": username, "password": password})

    async def create_token(self, name: str = "script") -> str:
        reply = await self.post("/api/tokens", json={"name": name})
        assert reply.status == 201, reply
        return str(reply.json["token"])

    def with_token(self, token: str, *, origin: str | None = None) -> ApiClient:
        """A script-like client: Bearer token, no cookies, no Origin (closed with this one)."""
        child = ApiClient(self.base_url, origin=origin, token=token, cookies=False)
        child.user, child.username, child.password = self.user, self.username, self.password
        self._children.append(child)
        return child

    async def close(self) -> None:
        for child in self._children:
            await child.close()
        await self._session.close()


@dataclass
class LiveServer:
    """A started appliance: `url` has no trailing slash."""

    url: str
    settings: Settings
    app: web.Application
    test_server: TestServer
    clients: list[ApiClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> ApiClient:
        """A fresh, logged-out client (closed with the server)."""
        client = ApiClient(self.url, **kwargs)
        self.clients.append(client)
        return client

    async def legal_versions(self) -> dict[str, str]:
        """The current versions, as `accept_terms`/`accept_privacy` body fields."""
        out: dict[str, str] = {}
        async with aiohttp.ClientSession() as session:
            for kind in ("terms", "privacy"):
                async with session.get(f"{self.url}/api/legal/{kind}") as response:
                    assert response.status == 200
                    out[f"accept_{kind}"] = (await response.json())["version"]
        return out

    async def create_account(
        self, role: str, username: str, password: str = DEFAULT_PASSWORD, birthdate: str | None = None
    ) -> None:
        """Create an account the way the CLI does (no creator, nothing accepted yet)."""
        from appliance.app_keys import ACCOUNTS

        await self.app[ACCOUNTS].create_by(None, username, password, role, birthdate)

    async def make_user(
        self,
        role: str = "student",
        username: str | None = None,
        birthdate: str | None = None,
        *,
        password: str = DEFAULT_PASSWORD,
    ) -> ApiClient:
        """A logged-in client that has accepted the current legal texts.

        Students old enough register themselves through the API; staff and younger students
        are created directly (as the CLI or a teacher would) and accept at first login.
        """
        username = username or unique_username(role)
        client = self.client()
        if role == "student" and birthdate is None:
            birthdate = years_ago(15)
        self_register = role == "student" and _age(birthdate) >= self.settings.min_self_register_age
        if self_register:
            body = {"username": username, "password": password, "birthdate": birthdate}
            reply = await client.post("/api/auth/register", json={**body, **await self.legal_versions()})
            assert reply.status == 201, reply
        else:
            await self.create_account(role, username, password, birthdate)
        reply = await client.login(username, password)
        assert reply.status == 200, reply
        if reply.json["user"]["pending_legal"]:
            accepted = await client.post("/api/me/accept-legal", json=await self.legal_versions())
            assert accepted.status == 200, accepted
        me = await client.get("/api/me")
        assert me.status == 200 and not me.json["pending_legal"], me
        client.user, client.username, client.password = me.json, username, password
        return client

    def db_rows(self, *, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, read by a separate connection."""
        return dbaccess.dump_db(self.settings, exclude=exclude)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.test_server.close()


async def class_with(teacher: ApiClient, students: Sequence[ApiClient], name: str = "7B") -> dict[str, Any]:
    """A class of `teacher`'s that every one of `students` joined by its code; its JSON."""
    klass = await teacher.post("/api/classes", json={"name": name})
    assert klass.status == 201, klass
    for student in students:
        joined = await student.post("/api/classes/join", json={"code": klass.json["join_code"]})
        assert joined.status == 200, joined
    return klass.json


async def problem_for(teacher: ApiClient, class_id: int, title: str, test_case: dict[str, Any]) -> int:
    """A Python problem of `teacher`'s with one test case, assigned to `class_id`; its id."""
    problem = await teacher.post(
        "/api/problems",
        json={
            "title": title,
            "statement": "Print the input.",
            "language": "python",
            "classes": [class_id],
            "test_cases": [{"name": "t", **test_case}],
        },
    )
    assert problem.status == 201, problem
    return problem.json["id"]


def _age(birthdate: str | None) -> int:
    if birthdate is None:
        return 200
    born = date.fromisoformat(birthdate)
    today = datetime.now(UTC).date()
    return today.year - born.year - int((today.month, today.day) < (born.month, born.day))


# Sync's change log (schema/0020_sync.sql): its triggers rightly record every change to a tracked row,
# so before/after comparisons around a change to such a row leave it out.
SYNC_CHANGE_LOG = ("sync_changes", "sync_counter")


def dump_db(target: Settings | Path, *, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of all tables (sorted), for before/after comparisons: of the settings' database, or
    of a SQLite file."""
    return dbaccess.dump_db(target, exclude=exclude)


@pytest.fixture
def sandbox_ready() -> None:
    """The Docker engine and this checkout's sandbox image: else a skip, or a failure under CI."""
    require_sandbox()


@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper scrypt for accounts made during the test (opt in; tests/core uses it for every test).

    Only the cost parameter changes: hashes still record their own N, so logins verify exactly as
    in production. `tests/core/test_accounts_hashing.py` checks the production cost itself.
    """
    from appliance import passwords

    monkeypatch.setattr(passwords, "N", 2**10)


ENGINES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=ENGINES,
        default=os.environ.get("LABRUNNER_TEST_DB") or "sqlite",
        help="the database engine the servers under test use (default: $LABRUNNER_TEST_DB, else sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file itself; skipped with --db=postgresql")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {config.getoption('db')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("db") != "postgresql":
        return
    skip = pytest.mark.skip(reason="SQLite file only")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


def on_postgresql(config: pytest.Config) -> bool:
    return config.getoption("db") == "postgresql"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """This run's own PostgreSQL cluster; skipped, or a failure under CI, without the binaries."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL's server binaries are missing: run packaging/ensure-postgres.sh")
    cluster = PgCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


TEMPLATE_DATABASE = "labrunner_tmpl"


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per run; the tests' databases start as copies of it (a copy takes
    milliseconds, migrating takes a second or more). Nothing stays connected to it."""
    from appliance import migrations

    url = pg_cluster.create_database(TEMPLATE_DATABASE)
    migrations.migrate(url, tmp_path_factory.mktemp("pg-template-backups"))
    return TEMPLATE_DATABASE


def _database_name(data_dir: Path, *, empty: bool) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:24]
    return f"{'empty' if empty else 'data'}_{digest}"


@pytest.fixture
def settings_defaults() -> dict[str, Any]:
    """Settings every `settings_factory` call starts from, before its own overrides; a folder's
    conftest may change them for the tests whose subject they are not."""
    return {}


@pytest.fixture
def settings_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, settings_defaults: dict[str, Any]
) -> Iterator[Callable[..., Settings]]:
    """`settings_factory(**overrides)`: Settings on a fresh data dir (`environment=`, `data_dir=` allowed).

    With --db=postgresql the settings name their own database (the same one for the same data dir):
    a copy of the run's migrated template, so the server's start-up migration finds nothing to do;
    `empty_database=True` gives one with no tables instead, as new as a fresh SQLite file (for tests
    of migrating itself).
    """
    cluster: PgCluster | None = request.getfixturevalue("pg_cluster") if on_postgresql(request.config) else None
    created: list[str] = []

    def make(
        *,
        environment: str | None = None,
        data_dir: Path | None = None,
        empty_database: bool = False,
        **overrides: Any,
    ) -> Settings:
        root = data_dir or tmp_path_factory.mktemp("data")
        overrides = {**settings_defaults, **overrides}
        if cluster is not None and "database_url" not in overrides:
            name = _database_name(root, empty=empty_database)
            if not cluster.database_exists(name):
                template = None if empty_database else request.getfixturevalue("pg_template")
                cluster.create_database(name, template=template)
                created.append(name)
            overrides["database_url"] = cluster.url(name)
        return load_settings(environment=environment, data_dir=root, overrides=overrides, environ={})

    yield make
    if cluster is not None:
        for name in created:
            cluster.drop_database(name)


async def start_server(settings: Settings, **app_options: Any) -> LiveServer:
    """Build the app exactly as `labrunner serve` does and serve it on a free 127.0.0.1 port.

    `app_options` go to `create_app` (e.g. `executor_factory=`, `image_check=` for runner tests).
    """
    from appliance.runtime import create_app

    app = create_app(settings, **app_options)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    url = str(test_server.make_url("")).rstrip("/")
    return LiveServer(url=url, settings=settings, app=app, test_server=test_server)


@pytest.fixture
async def server_factory(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[LiveServer]]]:
    """`await server_factory(**overrides, app_options={...})`: a started server with custom settings.

    `overrides` are settings (plus `environment=`); `app_options` are passed to `create_app`.
    """
    started: list[LiveServer] = []

    async def make(*, app_options: dict[str, Any] | None = None, **overrides: Any) -> LiveServer:
        live = await start_server(settings_factory(**overrides), **(app_options or {}))
        started.append(live)
        return live

    yield make
    for live in reversed(started):
        await live.close()


@pytest.fixture
async def server(server_factory: Callable[..., Awaitable[LiveServer]]) -> LiveServer:
    """A started server with default settings on a fresh data dir."""
    return await server_factory()


@pytest.fixture
def make_user(server: LiveServer) -> Callable[..., Awaitable[ApiClient]]:
    """`await make_user(role="student", username=None, birthdate=None)` on the `server` fixture."""
    return server.make_user


@pytest.fixture
async def anon(server: LiveServer) -> ApiClient:
    """A logged-out, browser-like client on `server`."""
    return server.client()


def _instances_of_this_session(session: pytest.Session) -> set[str]:
    """The sandbox instance labels this run's tests could have used: the sandbox tests' own, and
    one per data folder under this run's temporary directory (an appliance labels its containers
    by its data folder). Other runs' and a developer's own appliance's containers are not ours."""
    from appliance.sandbox_wiring import instance_label
    from tests.sandbox.conftest import INSTANCE

    labels = {INSTANCE}
    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    for folder in [base, *(path for path in base.rglob("*") if path.is_dir())]:
        labels.update({instance_label(folder), instance_label(folder.resolve())})
    return labels


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if it left sandbox containers on the engine (every test cleans up what it
    starts, also after killing an appliance or stopping the engine), and remove them."""
    import docker
    import docker.errors

    from runner.sandbox_container import LABEL_INSTANCE, LABEL_SANDBOX

    try:
        client = docker.from_env(timeout=30)
        found = client.api.containers(all=True, filters={"label": f"{LABEL_SANDBOX}=1"})
    except Exception:
        return  # no engine: the tests that need one have said so themselves
    try:
        ours = _instances_of_this_session(session)
        leftovers = [c for c in found if c["Labels"].get(LABEL_INSTANCE) in ours]
        if not leftovers:
            return
        print(f"\n{len(leftovers)} sandbox containers were left behind by this test run:")
        for container in leftovers:
            print(f"  {container['Id'][:12]} {container['State']} instance={container['Labels'].get(LABEL_INSTANCE)}")
            try:
                client.api.remove_container(container["Id"], force=True)
            except docker.errors.APIError:
                pass  # already being removed
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        client.close()
