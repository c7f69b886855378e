"""The README documents every setting and every CLI command (Datasette's test_docs idea)."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.cli import build_parser
from appliance.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in README or f"LABRUNNER_{s.name.upper()}" not in README]
    assert not missing, f"README's configuration table lacks: {missing}"


def test_every_command_is_documented() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"`{name}" not in README]
    assert not missing, f"README's command table lacks: {missing}"


def test_every_environment_variable_the_appliance_reads_is_documented() -> None:
    """Beyond one LABRUNNER_<SETTING> per setting (above): LABRUNNER_ENV, LABRUNNER_DATA_DIR, ..."""
    named = {
        name
        for path in (ROOT / "appliance").rglob("*.py")
        for name in re.findall(r"""["'](LABRUNNER_[A-Z0-9_]+)["']""", path.read_text(encoding="utf-8"))
    }
    assert {"LABRUNNER_ENV", "LABRUNNER_DATA_DIR"} <= named  # the scan finds what it looks for
    configuration = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in named if f"`{name}`" not in configuration)
    assert not missing, f"README's Configuration section does not explain: {missing}"


def test_the_format_checks_the_readme_cites_are_run_by_the_test_script() -> None:
    script = (ROOT / "packaging" / "test.sh").read_text(encoding="utf-8")
    run = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    cited = re.findall(r"`npx (prettier@\S+(?: --[a-z-]+)* [^`]+)`", README)
    assert cited, "the README no longer cites a Prettier command: drop this test with it"
    for command in cited:
        assert any(re.fullmatch(rf"npx (?:--yes )?{re.escape(command)}", line) for line in run), (
            f"packaging/test.sh does not run `npx {command}`"
        )
