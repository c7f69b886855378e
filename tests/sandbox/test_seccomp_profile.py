"""The committed seccomp profile is what sandbox/recipe/derive-seccomp.py says it is (no Docker).

Deriving it again needs Docker's default profile from a Debian package; the rules this checks
are the ones whose loss would let a program reach another process's limits and priorities.
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from runner import image

RECIPE = image.SANDBOX_DIR / "recipe"


def derivation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_seccomp", RECIPE / "derive-seccomp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calls_on_another_process_are_allowed_only_with_the_derivations_conditions() -> None:
    self_only = derivation().SELF_ONLY
    profile = json.loads((RECIPE / "seccomp.json").read_text())
    for name, alternatives in self_only.items():
        rules = [rule for rule in profile["syscalls"] if name in rule["names"]]
        assert all(rule["action"] == "SCMP_ACT_ALLOW" and rule["names"] == [name] for rule in rules), name
        assert all(arg["op"] == "SCMP_CMP_EQ" for rule in rules for arg in rule["args"]), name
        conditions = sorted(tuple((arg["index"], arg["value"]) for arg in rule["args"]) for rule in rules)
        assert conditions == sorted(found for _, found in alternatives), name
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
