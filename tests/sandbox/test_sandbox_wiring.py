"""The appliance's sandbox settings reach SandboxSettings by a declared mapping, never by name alone
(no Docker needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from appliance.sandbox_wiring import INTERNAL, SANDBOX_PREFIXES, SANDBOX_SETTINGS, mapping_problems, sandbox_settings
from appliance.settings import SETTINGS, Settings
from runner.sandbox_settings import SandboxSettings

SETTING_NAMES = [s.name for s in SETTINGS]
FIELD_NAMES = [f.name for f in dataclasses.fields(SandboxSettings)]


def test_every_sandbox_field_is_mapped_from_a_setting_or_internal() -> None:
    mapped = set(SANDBOX_SETTINGS.values())
    assert not mapped & INTERNAL
    assert sorted(mapped | INTERNAL) == sorted(FIELD_NAMES)
    assert len(mapped) == len(SANDBOX_SETTINGS)  # no field is set by two settings


def test_every_sandbox_setting_is_mapped() -> None:
    prefixed = {name for name in SETTING_NAMES if name.startswith(SANDBOX_PREFIXES)}
    # A live run's limits are mapped too; its other settings (capacity, connect time) are the app's.
    assert prefixed == {name for name in SANDBOX_SETTINGS if not name.startswith("live_")}
    assert mapping_problems(SETTING_NAMES, FIELD_NAMES) == []


def test_a_renamed_name_on_either_side_is_reported() -> None:
    renamed_setting = ["sandbox_pid_limit" if n == "sandbox_pids_limit" else n for n in SETTING_NAMES]
    assert mapping_problems(renamed_setting, FIELD_NAMES) == [
        "no such appliance setting: sandbox_pids_limit",
        "appliance setting sandbox_pid_limit is not mapped to SandboxSettings",
    ]
    renamed_field = ["pid_limit" if n == "pids_limit" else n for n in FIELD_NAMES]
    assert mapping_problems(SETTING_NAMES, renamed_field) == [
        "no such SandboxSettings field: pids_limit",
        "SandboxSettings field pid_limit is neither mapped from a setting nor listed as internal",
    ]


def test_every_sandbox_setting_reaches_sandbox_settings(settings_factory: Callable[..., Settings]) -> None:
    defaults = SandboxSettings()
    chosen: dict[str, object] = {}
    for name, field in SANDBOX_SETTINGS.items():
        default = getattr(defaults, field)
        if name == "sandbox_runtime":
            chosen[name] = "crun"
        elif name == "sandbox_cpuset":
            chosen[name] = "0"
        elif isinstance(default, bool):
            chosen[name] = not default
        else:
            chosen[name] = default + (0.5 if isinstance(default, float) else 1)
    sandbox = sandbox_settings(settings_factory(**chosen))
    for name, field in SANDBOX_SETTINGS.items():
        assert getattr(sandbox, field) == chosen[name] != getattr(defaults, field), name
