"""The appliance's SQL stays in the subset SQLite 3.40 and PostgreSQL 15 both accept.

Reads the source, not a database: every string literal of appliance/ (docstrings aside) outside the
database layer (appliance/db/) and the migrations is searched for SQLite-only forms. A form with no
common text is allowed only inside a function that branches on the engine (`dialect_of(...)` or a
`dialect` argument), so the other engine's text sits next to it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPLIANCE = ROOT / "appliance"
# The engines' own code: the database layer, the migration runner and its translation of SQLite's
# DDL speak each engine directly.
OUTSIDE = (APPLIANCE / "db", APPLIANCE / "migrations.py", APPLIANCE / "schema_translation.py")
# Works on SQLite files themselves (VACUUM INTO copies, PRAGMA checks of a backup's copy).
SQLITE_FILES = APPLIANCE / "store" / "snapshots.py"

# SQLite-only forms with a portable spelling: never allowed.
FORBIDDEN = {
    "INSERT OR …: use INSERT … ON CONFLICT DO NOTHING / DO UPDATE": re.compile(r"\bINSERT\s+OR\s+[A-Z]+\b"),
    "REPLACE INTO: use INSERT … ON CONFLICT DO UPDATE": re.compile(r"\bREPLACE\s+INTO\b"),
    "IS / IS NOT with a value: use IS [NOT] DISTINCT FROM": re.compile(
        r"\bIS\s+(?:NOT\s+)?(?!NULL\b|NOT\b|DISTINCT\b)\S"
    ),
    "scalar MAX/MIN of two values: use CASE WHEN a > b THEN a ELSE b END": re.compile(
        r"\b(?:MAX|MIN|max|min)\(\s*[^()]*,"
    ),
    "SUM of a comparison: SUM(CASE WHEN … THEN 1 ELSE 0 END)": re.compile(r"\bSUM\((?!\s*CASE\b)[^()]*(?:=|<|>)"),
    "IFNULL: use COALESCE": re.compile(r"\bIFNULL\(", re.IGNORECASE),
    "COLLATE NOCASE: use lower(...)": re.compile(r"\bCOLLATE\s+NOCASE\b", re.IGNORECASE),
    "GLOB: use LIKE or =": re.compile(r"\bGLOB\b"),
}
# SQLite-only forms with no common text: only where the function also spells the other engine's.
BRANCH_ONLY = {
    "json_each/json_extract (SQLite's JSON)": re.compile(r"\bjson_(?:each|extract|tree|array_length)\("),
    "julianday/strftime (SQLite's dates)": re.compile(r"\b(?:julianday|strftime|unixepoch)\("),
    "NOT INDEXED / INDEXED BY": re.compile(r"\b(?:NOT\s+INDEXED|INDEXED\s+BY)\b"),
    "SQLite's catalogue": re.compile(r"\b(?:sqlite_master|sqlite_schema|pragma_\w+\()"),
    "PRAGMA": re.compile(r"\bPRAGMA\b"),
}
# Where a derived table (a subquery in FROM or JOIN) ends: PostgreSQL wants an alias before these.
_AFTER_UNALIASED = re.compile(r"\s*(?:$|\)|WHERE\b|ORDER\b|GROUP\b|LIMIT\b|JOIN\b|LEFT\b|ON\b|UNION\b|,)")


@dataclass(frozen=True)
class Literal:
    path: Path
    line: int
    text: str  # f-string parts joined, each {…} as "{}"
    in_branch: bool  # inside a function that branches on the engine


def _sources() -> Iterator[Path]:
    for path in sorted(APPLIANCE.rglob("*.py")):
        if not any(path == outside or outside in path.parents for outside in OUTSIDE):
            yield path


def _branches_on_dialect(function: ast.AST) -> bool:
    return any(
        isinstance(node, ast.If | ast.IfExp) and "dialect" in ast.unparse(node.test) for node in ast.walk(function)
    )


def _text(node: ast.Constant | ast.JoinedStr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    return "".join(str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values)


def _literals(path: Path) -> Iterator[Literal]:
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)  # judged as parts of the whole f-string
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))  # a docstring: prose, not SQL
    branching: dict[int, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside = _branches_on_dialect(node)
            for child in ast.walk(node):
                branching[id(child)] = branching.get(id(child), False) or inside
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
        if is_text and id(node) not in skip:
            yield Literal(path, node.lineno, _text(node), branching.get(id(node), False))  # type: ignore[arg-type]


def _unaliased_derived_tables(sql: str) -> Iterator[str]:
    for match in re.finditer(r"\b(?:FROM|JOIN)\s*(\()\s*SELECT\b", sql):
        depth = 0
        for end in range(match.start(1), len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        else:
            continue  # the subquery goes on in another literal: judged where it ends, if at all
        if _AFTER_UNALIASED.match(sql, end + 1):
            yield sql[match.start() : end + 1]


def problems_in(paths: Iterator[Path]) -> list[str]:
    found = []
    for path in paths:
        where = path.relative_to(ROOT) if ROOT in path.parents else path
        source = path.read_text()
        if "aiosqlite" in source:
            found.append(f"{where}: aiosqlite outside appliance/db (type connections as appliance.db.Conn)")
        if path != SQLITE_FILES and re.search(r"^\s*(?:import sqlite3|from sqlite3 import)", source, re.M):
            found.append(f"{where}: sqlite3 outside appliance/db (catch appliance.db.IntegrityError/MissingTable)")
        if any(isinstance(n, ast.Attribute) and n.attr == "lastrowid" for n in ast.walk(ast.parse(source))):
            found.append(f"{where}: lastrowid (PostgreSQL has none: INSERT … RETURNING id)")
        for literal in _literals(path):
            for why, pattern in FORBIDDEN.items():
                if pattern.search(literal.text):
                    found.append(f"{where}:{literal.line}: {why}: {literal.text!r}")
            if path != SQLITE_FILES and not literal.in_branch:
                for why, pattern in BRANCH_ONLY.items():
                    if pattern.search(literal.text):
                        found.append(f"{where}:{literal.line}: {why} outside a dialect branch: {literal.text!r}")
            for table in _unaliased_derived_tables(literal.text):
                found.append(f"{where}:{literal.line}: derived table without an alias (PostgreSQL): {table!r}")
    return found


def test_appliance_sql_is_portable() -> None:
    assert problems_in(_sources()) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('Q = "INSERT OR IGNORE INTO t (a) VALUES (?)"\n', "INSERT OR"),
        ('Q = "SELECT 1 FROM t WHERE a IS ?"\n', "IS / IS NOT"),
        ("Q = \"SELECT 1 FROM t WHERE a IS NOT 'x'\"\n", "IS / IS NOT"),
        ('Q = "UPDATE t SET a = MAX(a, ?)"\n', "scalar MAX"),
        ("Q = \"SELECT SUM(v = 'ok') FROM t\"\n", "SUM of a comparison"),
        ('Q = "SELECT a FROM t ORDER BY a COLLATE NOCASE"\n', "COLLATE NOCASE"),
        ('Q = "SELECT value FROM json_each(?)"\n', "outside a dialect branch"),
        ('def f(db):\n    return "SELECT julianday(a) FROM t"\n', "outside a dialect branch"),
        ('Q = f"SELECT a FROM (SELECT a FROM t) WHERE {1}"\n', "derived table without an alias"),
        ('Q = "SELECT a FROM ( SELECT max(a) AS a FROM t WHERE b = (1)) WHERE a > 0"\n', "derived table without"),
        ("import sqlite3\n", "sqlite3 outside"),
        ("import aiosqlite\n", "aiosqlite outside"),
        ("def f(c):\n    return c.lastrowid\n", "lastrowid"),
    ],
)
def test_each_form_is_found(tmp_path: Path, code: str, expected: str) -> None:
    """The check can fail: each forbidden form, alone in a module, is reported."""
    module = tmp_path / "probe.py"
    module.write_text(code)
    found = problems_in(iter([module]))
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "code",
    [
        'Q = "INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING"\n',
        'Q = "SELECT 1 FROM t WHERE a IS NOT DISTINCT FROM ? AND b IS NULL AND c IS NOT NULL"\n',
        "Q = \"SELECT SUM(CASE WHEN v = 'ok' THEN 1 ELSE 0 END), MAX(CASE WHEN a THEN b END) FROM t\"\n",
        'Q = "SELECT a FROM (SELECT a FROM t) AS s WHERE a = 1"\n',
        'def f(db):\n    if dialect_of(db) == "postgresql":\n        return "x"\n'
        '    return "SELECT julianday(a) FROM t"\n',
        'def f():\n    """Uses json_each( and IS ? in prose only."""\n',
    ],
)
def test_portable_forms_pass(tmp_path: Path, code: str) -> None:
    module = tmp_path / "probe.py"
    module.write_text(code)
    assert problems_in(iter([module])) == []
