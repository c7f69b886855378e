"""Each language gets the right outcome for a correct, crashing, failing-to-compile, slow and
memory-hungry program, run in the real sandbox."""

from __future__ import annotations

import signal

import pytest

from runner.languages import LANGUAGES
from tests.sandbox.conftest import Run

pytestmark = pytest.mark.docker

SUM = {
    "python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "c": '#include <stdio.h>\nint main(void) { long a, b; if (scanf("%ld %ld", &a, &b) != 2) return 1;'
    ' printf("%ld\\n", a + b); return 0; }\n',
    "cpp": "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n",
    "java": "import java.util.Scanner;\npublic class Main { public static void main(String[] args) {"
    " Scanner in = new Scanner(System.in); long a = in.nextLong(), b = in.nextLong();"
    " System.out.println(a + b); } }\n",
    "javascript": "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
    "console.log(a + b);\n",
}

CRASH = {
    "python": "print('before')\n1 / 0\n",
    "c": '#include <stdio.h>\nint main(void) { puts("before"); fflush(stdout); volatile int *p = 0; return *p; }\n',
    "cpp": '#include <iostream>\n#include <stdexcept>\nint main() { std::cout << "before" << std::endl;'
    ' throw std::runtime_error("boom"); }\n',
    "java": 'public class Main { public static void main(String[] args) { System.out.println("before");'
    ' throw new RuntimeException("boom"); } }\n',
    "javascript": "console.log('before');\nthrow new Error('boom');\n",
}

COMPILE_ERROR = {
    "c": "int main(void) { return undeclared_name; }\n",
    "cpp": "int main() { return undeclared_name; }\n",
    "java": "public class Main { public static void main(String[] args) { int x = undeclared_name; } }\n",
}

SLOW = {
    "python": "while True:\n    pass\n",
    "c": "int main(void) { volatile unsigned long i = 0; for (;;) i++; }\n",
    "cpp": "int main() { volatile unsigned long i = 0; for (;;) i++; }\n",
    "java": "public class Main { static volatile long i; public static void main(String[] args) { for (;;) i++; } }\n",
    "javascript": "let i = 0;\nfor (;;) { i++; }\n",
}

MEMORY_HOG = {
    "python": "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n",
    "c": "#include <stdlib.h>\n#include <string.h>\nint main(void) { for (;;) { char *p = malloc(1 << 20);"
    " if (!p) return 1; memset(p, 1, 1 << 20); } }\n",
    "cpp": "#include <vector>\nint main() { std::vector<std::vector<char>> v; for (;;) v.emplace_back(1 << 20, 1); }\n",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] args) {"
    " List<byte[]> keep = new ArrayList<>(); for (;;) keep.add(new byte[1 << 20]); } }\n",
    "javascript": "const keep = [];\nfor (;;) { keep.push(new Array(1 << 17).fill(1.5)); }\n",
}


def test_every_language_has_programs_here() -> None:
    assert set(SUM) == set(CRASH) == set(SLOW) == set(MEMORY_HOG) == set(LANGUAGES)
    assert set(COMPILE_ERROR) == {lang for lang, spec in LANGUAGES.items() if not spec.parse_only}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_correct_program(run: Run, language: str) -> None:
    result = await run(SUM[language], language, [b"1 2\n", b"40 2\n"])
    # Every language compiles, or checks the syntax, first.
    assert result.compile is not None and result.compile.ok, result.compile
    assert [(t.name, t.status, t.exit_code, t.stdout) for t in result.tests] == [
        ("t0", "ok", 0, b"3\n"),
        ("t1", "ok", 0, b"42\n"),
    ], result.tests


@pytest.mark.parametrize("language", LANGUAGES)
async def test_crash_is_a_runtime_error(run: Run, language: str) -> None:
    result = await run(CRASH[language], language)
    [test] = result.tests
    assert test.status == "runtime_error", test
    assert test.stdout == b"before\n"
    if language == "c":
        assert (test.exit_code, test.signal) == (None, signal.SIGSEGV)
    elif language == "cpp":
        assert (test.exit_code, test.signal) == (None, signal.SIGABRT)
        assert b"boom" in test.stderr
    else:
        assert test.exit_code not in (0, None)
        assert test.stderr


@pytest.mark.parametrize("language", COMPILE_ERROR)
async def test_compile_error(run: Run, language: str) -> None:
    result = await run(COMPILE_ERROR[language], language)
    assert result.compile is not None and not result.compile.ok
    assert "undeclared_name" in result.compile.output
    assert result.tests == []


@pytest.mark.parametrize("language", LANGUAGES)
async def test_slow_program_hits_the_time_limit(run: Run, language: str) -> None:
    result = await run(SLOW[language], language, time_limit_ms=500)
    [test] = result.tests
    assert test.status == "time_limit", test
    assert test.time_ms >= 500


@pytest.mark.parametrize("language", LANGUAGES)
async def test_memory_hog_hits_the_memory_limit(run: Run, language: str) -> None:
    result = await run(MEMORY_HOG[language], language, memory_limit_mb=64, time_limit_ms=5000)
    [test] = result.tests
    assert test.status == "memory_limit", test


async def test_python_libraries_run_headless(run: Run) -> None:
    # The image's scientific and graphics stack works within a modest limit, with no display.
    code = (
        "import numpy, pygame, tkinter, turtle\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot(numpy.arange(3) @ numpy.eye(3))\n"
        "plt.savefig('plot.png')\n"
        "screen = pygame.display.set_mode((40, 30))\n"
        "pygame.image.save(screen, 'frame.png')\n"
        "print('drawn')\n"
    )
    result = await run(code, memory_limit_mb=64, time_limit_ms=5000)
    [test] = result.tests
    assert (test.status, test.stdout) == ("ok", b"drawn\n"), test
