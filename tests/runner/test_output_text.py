"""Program output becomes text the same way on both stores: invalid UTF-8 and U+0000 (which
PostgreSQL cannot store) show as the replacement character, whole or cut."""

from __future__ import annotations

from runner.grading import decode
from runner.results import bound_text


def test_nul_and_invalid_bytes_show_as_the_replacement_character() -> None:
    assert decode(b"a\x00b\xff") == "a\ufffdb\ufffd"


def test_a_cut_output_carries_no_nul_either() -> None:
    text, cut = bound_text(b"\x00" * 5000, 1000)
    assert cut
    assert "\x00" not in text
    assert text.startswith("\ufffd")
