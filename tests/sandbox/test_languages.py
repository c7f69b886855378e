"""The language table, without Docker."""

from __future__ import annotations

import pytest

from runner.languages import LANGUAGES


def test_the_five_languages_in_order() -> None:
    assert list(LANGUAGES) == ["python", "c", "cpp", "java", "javascript"]
    assert all(lang.id == key and lang.name and lang.version for key, lang in LANGUAGES.items())


@pytest.mark.parametrize(
    ("language", "extension", "compiled"),
    [
        ("python", ".py", False),
        ("c", ".c", True),
        ("cpp", ".cpp", True),
        ("java", ".java", True),
        ("javascript", ".js", False),
    ],
)
def test_sources_and_commands(language: str, extension: str, compiled: bool) -> None:
    lang = LANGUAGES[language]
    assert lang.source_name.endswith(extension)
    assert (lang.compile_argv(512) is not None) == compiled
    commands = [lang.run_argv(256), *([lang.compile_argv(512)] if compiled else [])]
    # Placeholders are all filled in, and the source is what gets compiled or run.
    assert not any("{" in arg for argv in commands for arg in argv if argv)
    if compiled:
        assert lang.source_name in lang.compile_argv(512)  # type: ignore[operator]
    elif language != "java":
        assert lang.source_name in lang.run_argv(256)


def test_self_managed_heaps_get_the_limit_as_a_flag() -> None:
    assert "-Xmx300m" in LANGUAGES["java"].run_argv(300)
    assert "-J-Xmx512m" in LANGUAGES["java"].compile_argv(512)  # type: ignore[operator]
    assert "--max-old-space-size=300" in LANGUAGES["javascript"].run_argv(300)
    # Only native programs get RLIMIT_AS: the runtimes reserve far more address space than they use.
    assert {key for key, lang in LANGUAGES.items() if lang.address_space_limit} == {"c", "cpp"}


def test_runtimes_that_print_an_out_of_memory_message_have_a_marker() -> None:
    assert {key for key, lang in LANGUAGES.items() if lang.memory_markers} == {"python", "cpp", "java", "javascript"}
