"""The README documents every setting and every CLI command (Datasette's test_docs idea)."""

from __future__ import annotations

from pathlib import Path

from appliance.cli import build_parser
from appliance.settings import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in README or f"LABRUNNER_{s.name.upper()}" not in README]
    assert not missing, f"README's configuration table lacks: {missing}"


def test_every_command_is_documented() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"`{name}" not in README]
    assert not missing, f"README's command table lacks: {missing}"
