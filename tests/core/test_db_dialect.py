"""The store's `?`/`:name` SQL becomes PostgreSQL's `$n` without touching quoted text or casts."""

from __future__ import annotations

import pytest

from appliance.db.dialect import ParameterError, arguments, translate


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = $1 AND y = $2"),
        ("SELECT '?', \"?\" FROM t WHERE x = ?", "SELECT '?', \"?\" FROM t WHERE x = $1"),
        ("SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = $1"),
        ("SELECT x::text FROM t WHERE y = ?", "SELECT x::text FROM t WHERE y = $1"),
        ("SELECT 1 -- why? because\nWHERE x = ?", "SELECT 1 -- why? because\nWHERE x = $1"),
        ("SELECT /* ? :no */ 1 WHERE x = ?", "SELECT /* ? :no */ 1 WHERE x = $1"),
        ("SELECT '%H:%M:%S' WHERE t > ?", "SELECT '%H:%M:%S' WHERE t > $1"),
    ],
)
def test_positional_parameters_are_numbered_outside_quotes_comments_and_casts(sql: str, expected: str) -> None:
    assert translate(sql) == (expected, None)


def test_named_parameters_share_a_number_per_name_in_first_use_order() -> None:
    text, names = translate("DELETE FROM t WHERE a < :before AND b = :owner AND c < :before LIMIT :limit")
    assert text == "DELETE FROM t WHERE a < $1 AND b = $2 AND c < $1 LIMIT $3"
    assert names == ("before", "owner", "limit")
    assert arguments(names, {"limit": 5, "owner": 7, "before": "2026", "unused": 0}) == ["2026", 7, 5]


def test_mixed_or_missing_parameters_are_refused() -> None:
    with pytest.raises(ParameterError):
        translate("SELECT ? WHERE a = :a")
    with pytest.raises(ParameterError, match=":b"):
        arguments(("a", "b"), {"a": 1})
    with pytest.raises(ParameterError, match="mapping"):
        arguments(("a",), (1,))
    with pytest.raises(ParameterError):
        arguments(None, {"a": 1})
    assert arguments(None, (1, 2)) == (1, 2)
