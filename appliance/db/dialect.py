"""The store's SQL, which names its parameters `?` or `:name` as sqlite3 does, in PostgreSQL's
numbered `$n` form.

Translation walks the text once and leaves quoted strings, quoted identifiers, comments and `::`
casts alone; the result is cached, because the store runs the same few hundred texts all day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from appliance.db.base import Params


class ParameterError(ValueError):
    """The parameters do not fit the statement's placeholders."""


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """The `$n` text, and the parameter names in `$n` order (None for positional `?`)."""
    out: list[str] = []
    names: list[str] = []
    positional = 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = _closing_quote(sql, i)
            out.append(sql[i:end])
            i = end
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif c == "?":
            positional += 1
            out.append(f"${positional}")
            i += 1
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            name = sql[i + 1 : j]
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            i = j
        else:
            out.append(c)
            i += 1
    if positional and names:
        raise ParameterError("a statement uses either ? or :name parameters, not both")
    return "".join(out), (tuple(names) if names else None)


def _closing_quote(sql: str, start: int) -> int:
    """The index just past the quoted run starting at `start` (a doubled quote stays inside)."""
    quote = sql[start]
    i = start + 1
    while True:
        end = sql.find(quote, i)
        if end < 0:
            return len(sql)
        if sql.startswith(quote * 2, end):
            i = end + 2
            continue
        return end + 1


def arguments(names: tuple[str, ...] | None, params: Params) -> Sequence[Any]:
    """The values in `$n` order."""
    if names is None:
        if isinstance(params, Mapping):
            if params:
                raise ParameterError("named parameters given to a statement with ? placeholders")
            return ()
        return params
    if not isinstance(params, Mapping):
        raise ParameterError(f"the statement names its parameters ({', '.join(names)}); pass a mapping")
    try:
        return [params[name] for name in names]
    except KeyError as exc:
        raise ParameterError(f"no value for parameter :{exc.args[0]}") from None
