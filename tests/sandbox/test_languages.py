"""The language table: its commands without Docker, and the names and versions it shows users
against what the toolchains in the sandbox image say about themselves."""

from __future__ import annotations

import pytest

from runner.languages import LANGUAGES
from tests.sandbox.conftest import Run

# What users are told (GET /api/languages, the editor): id, name and toolchain version.
EXPECTED = {
    "python": ("python", "Python", "3.11"),
    "c": ("c", "C (GCC)", "12 (C17)"),
    "cpp": ("cpp", "C++ (G++)", "12 (C++17)"),
    "java": ("java", "Java (OpenJDK)", "17"),
    "javascript": ("javascript", "JavaScript (Node.js)", "18"),
}

# Each prints its language's name and version as the toolchain that built and ran it reports them
# (the compiler's macros, the runtime's own version), in the table's wording.
SELF_REPORT = {
    "python": """
import sys
print("Python" if sys.implementation.name == "cpython" else sys.implementation.name)
print("%d.%d" % sys.version_info[:2])
""",
    "c": """
#include <stdio.h>
int main(void) {
#if defined(__GNUC__) && !defined(__clang__)
    puts("C (GCC)");
#else
    puts("C (another compiler)");
#endif
    printf("%d (C%ld)\\n", __GNUC__, (__STDC_VERSION__ / 100) % 100);
    return 0;
}
""",
    "cpp": """
#include <cstdio>
int main() {
#if defined(__GNUG__) && !defined(__clang__)
    std::puts("C++ (G++)");
#else
    std::puts("C++ (another compiler)");
#endif
    std::printf("%d (C++%ld)\\n", __GNUC__, (__cplusplus / 100) % 100);
}
""",
    "java": """
public class Main {
    public static void main(String[] args) {
        String vm = System.getProperty("java.vm.name");
        System.out.println("Java (" + (vm.contains("OpenJDK") ? "OpenJDK" : vm) + ")");
        System.out.println(Runtime.version().feature());
    }
}
""",
    "javascript": """
const runtime = process.release.name === "node" ? "Node.js" : process.release.name;
console.log(`JavaScript (${runtime})`);
console.log(process.versions.node.split(".")[0]);
""",
}


def test_the_five_languages_in_order() -> None:
    assert list(LANGUAGES) == list(EXPECTED)
    assert {key: (lang.id, lang.name, lang.version) for key, lang in LANGUAGES.items()} == EXPECTED


@pytest.mark.docker
@pytest.mark.parametrize("language", list(EXPECTED))
async def test_names_and_versions_are_what_the_image_runs(run: Run, language: str) -> None:
    result = await run(SELF_REPORT[language], language)
    assert result.compile is None or result.compile.ok, result.compile
    (outcome,) = result.tests
    assert outcome.status == "ok" and outcome.exit_code == 0, outcome
    lang = LANGUAGES[language]
    assert outcome.stdout.decode().splitlines() == [lang.name, lang.version]


@pytest.mark.parametrize(
    ("language", "extension", "parse_only"),
    [
        ("python", ".py", True),
        ("c", ".c", False),
        ("cpp", ".cpp", False),
        ("java", ".java", False),
        ("javascript", ".js", True),
    ],
)
def test_sources_and_commands(language: str, extension: str, parse_only: bool) -> None:
    lang = LANGUAGES[language]
    assert lang.source_name.endswith(extension)
    # Every language compiles, or at least parses, before it runs: a syntax error is a compile error.
    compile_argv = lang.compile_argv(512)
    assert compile_argv is not None and lang.parse_only == parse_only
    commands = [lang.run_argv(256), compile_argv]
    # Placeholders are all filled in, and the source is what gets compiled or run.
    assert not any("{" in arg for argv in commands for arg in argv)
    assert lang.source_name in compile_argv
    if parse_only:
        assert lang.source_name in lang.run_argv(256)


def test_self_managed_heaps_get_the_limit_as_a_flag() -> None:
    assert "-Xmx300m" in LANGUAGES["java"].run_argv(300)
    assert "-J-Xmx512m" in LANGUAGES["java"].compile_argv(512)  # type: ignore[operator]
    assert "--max-old-space-size=300" in LANGUAGES["javascript"].run_argv(300)
    # Only native programs get RLIMIT_AS: the runtimes reserve far more address space than they use.
    assert {key for key, lang in LANGUAGES.items() if lang.address_space_limit} == {"c", "cpp"}


def test_runtimes_that_print_an_out_of_memory_message_have_a_marker() -> None:
    assert {key for key, lang in LANGUAGES.items() if lang.memory_markers} == {"python", "cpp", "java", "javascript"}
