"""The one table of languages: how each is compiled and run inside the sandbox, and its limits.

Commands are argument lists run in the test's working directory inside the container. In them,
``{memory_mb}`` stands for the memory a runtime may use: the test's limit when running, the
compile limit when compiling.

Every language has a compile step, so a program that does not parse is a compile error before any
test runs, in its own words ("main.py", line 3). Interpreted languages only parse there
(`parse_only`): no compiler's memory, so the container keeps the program's size throughout.

Memory is bounded twice. The container's memory cgroup, sized to the test's limit plus the
runtime's overhead, is the exact outer bound for every language (its OOM kills are reported as
memory_limit). Inside it, native programs (C, C++) also get RLIMIT_AS, so a runaway allocation
fails in the program itself; runtimes that reserve far more address space than they use get their
heap size as a flag instead (JVM, V8), or nothing (CPython: numpy's OpenBLAS alone reserves
over 100 MB of address space on its first matrix product, while using a few).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sandbox import protocol


@dataclass(frozen=True)
class Language:
    id: str
    name: str
    version: str  # of the toolchain in the sandbox image (Debian bookworm)
    source_name: str
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    # The compile step only checks the syntax (an interpreter's parse): it runs within the
    # program's memory budget, not the compiler's.
    parse_only: bool = False
    # RLIMIT_AS on top of the container's memory cgroup; see the module's docstring.
    address_space_limit: bool = True
    # Memory a runtime needs beyond the program's own: added to the address-space limit, or to the
    # container only where a heap flag is the bound (JVM metaspace and code cache, V8 outside the
    # old space, an interpreter's own baseline).
    runtime_overhead_mb: int = 0
    # Slow starters get proportionally more time; the test's limit stays what the teacher set.
    time_factor: float = 1.0
    # What the runtime prints when the program ran out of memory.
    memory_markers: tuple[str, ...] = ()

    def compile_argv(self, memory_mb: int) -> tuple[str, ...] | None:
        return None if self.compile is None else _fill(self.compile, memory_mb)

    def run_argv(self, memory_mb: int) -> tuple[str, ...]:
        return _fill(self.run, memory_mb)


def _fill(argv: tuple[str, ...], memory_mb: int) -> tuple[str, ...]:
    return tuple(arg.replace("{memory_mb}", str(memory_mb)) for arg in argv)


_JVM_FLAGS = (
    # One GC thread and no JIT tiers beyond C1 start faster and use less memory on a small
    # share of a CPU; no perf data file means nothing written to /tmp behind the program's back.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xss64m",
)

LANGUAGES: Mapping[str, Language] = MappingProxyType(
    {
        lang.id: lang
        for lang in (
            Language(
                id="python",
                name="Python",
                version="3.11",
                source_name="main.py",
                # Compiled without running, as python3's start-up would, by the harness itself
                # (sandbox/harness/syntax_check.py): no interpreter start for the check.
                compile=(protocol.PYTHON_SYNTAX_CHECK, "main.py"),
                parse_only=True,
                run=("python3", "-B", "main.py"),
                address_space_limit=False,
                runtime_overhead_mb=48,
                memory_markers=("MemoryError",),
            ),
            Language(
                id="c",
                name="C (GCC)",
                version="12 (C17)",
                source_name="main.c",
                compile=("gcc", "-std=gnu17", "-O2", "-pipe", "-Wall", "-o", "main", "main.c", "-lm"),
                run=("./main",),
                runtime_overhead_mb=8,
            ),
            Language(
                id="cpp",
                name="C++ (G++)",
                version="12 (C++17)",
                source_name="main.cpp",
                compile=("g++", "-std=gnu++17", "-O2", "-pipe", "-Wall", "-o", "main", "main.cpp"),
                run=("./main",),
                runtime_overhead_mb=8,
                memory_markers=("std::bad_alloc",),
            ),
            Language(
                id="java",
                name="Java (OpenJDK)",
                version="17",
                source_name="Main.java",
                compile=(
                    "javac",
                    "-J-Xmx{memory_mb}m",
                    *(f"-J{flag}" for flag in _JVM_FLAGS),
                    "-encoding",
                    "UTF-8",
                    "Main.java",
                ),
                run=("java", "-Xmx{memory_mb}m", *_JVM_FLAGS, "-Dfile.encoding=UTF-8", "-cp", ".", "Main"),
                address_space_limit=False,
                runtime_overhead_mb=192,
                time_factor=2.0,
                memory_markers=("java.lang.OutOfMemoryError",),
            ),
            Language(
                id="javascript",
                name="JavaScript (Node.js)",
                version="18",
                source_name="main.js",
                compile=("node", "--check", "main.js"),
                parse_only=True,
                run=("node", "--max-old-space-size={memory_mb}", "main.js"),
                address_space_limit=False,
                runtime_overhead_mb=96,
                time_factor=1.5,
                memory_markers=("JavaScript heap out of memory",),
            ),
        )
    }
)
