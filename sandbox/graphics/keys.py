"""A browser's key names, as pygame and X know the same keys.

A live run's viewer sends each key as a browser's KeyboardEvent names it: `code` for the physical
key ("KeyA", "ArrowLeft"), `key` for what it means ("a", "A", "ArrowLeft"). The physical key is
what games look at and what X presses (Shift travels as a key of its own), so `code` decides;
`key` stands in when a browser sends no code (a phone's on-screen keyboard). pygame's keys are
named by constant (resolved inside the program, in pygame itself) or, for a printable ASCII
character, given as its code (SDL's keycode for it); X's by keysym.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    pygame: str | int  # a pygame constant's name ("K_LEFT"), or an SDL keycode
    keysym: int  # X's name for the key, unshifted
    text: str  # what pressing it types (pygame's `unicode`), unshifted; "" for none


_NAMED: dict[str, Key] = {
    "ArrowLeft": Key("K_LEFT", 0xFF51, ""),
    "ArrowUp": Key("K_UP", 0xFF52, ""),
    "ArrowRight": Key("K_RIGHT", 0xFF53, ""),
    "ArrowDown": Key("K_DOWN", 0xFF54, ""),
    "Enter": Key("K_RETURN", 0xFF0D, "\r"),
    "Escape": Key("K_ESCAPE", 0xFF1B, "\x1b"),
    "Space": Key("K_SPACE", 0x20, " "),
    "Tab": Key("K_TAB", 0xFF09, "\t"),
    "Backspace": Key("K_BACKSPACE", 0xFF08, "\x08"),
    "Delete": Key("K_DELETE", 0xFFFF, "\x7f"),
    "Insert": Key("K_INSERT", 0xFF63, ""),
    "Home": Key("K_HOME", 0xFF50, ""),
    "End": Key("K_END", 0xFF57, ""),
    "PageUp": Key("K_PAGEUP", 0xFF55, ""),
    "PageDown": Key("K_PAGEDOWN", 0xFF56, ""),
    "ShiftLeft": Key("K_LSHIFT", 0xFFE1, ""),
    "ShiftRight": Key("K_RSHIFT", 0xFFE2, ""),
    "ControlLeft": Key("K_LCTRL", 0xFFE3, ""),
    "ControlRight": Key("K_RCTRL", 0xFFE4, ""),
    "AltLeft": Key("K_LALT", 0xFFE9, ""),
    "AltRight": Key("K_RALT", 0xFFEA, ""),
    "MetaLeft": Key("K_LMETA", 0xFFEB, ""),
    "MetaRight": Key("K_RMETA", 0xFFEC, ""),
    "CapsLock": Key("K_CAPSLOCK", 0xFFE5, ""),
    "Minus": Key("K_MINUS", 0x2D, "-"),
    "Equal": Key("K_EQUALS", 0x3D, "="),
    "BracketLeft": Key("K_LEFTBRACKET", 0x5B, "["),
    "BracketRight": Key("K_RIGHTBRACKET", 0x5D, "]"),
    "Backslash": Key("K_BACKSLASH", 0x5C, "\\"),
    "Semicolon": Key("K_SEMICOLON", 0x3B, ";"),
    "Quote": Key("K_QUOTE", 0x27, "'"),
    "Backquote": Key("K_BACKQUOTE", 0x60, "`"),
    "Comma": Key("K_COMMA", 0x2C, ","),
    "Period": Key("K_PERIOD", 0x2E, "."),
    "Slash": Key("K_SLASH", 0x2F, "/"),
    "NumpadEnter": Key("K_KP_ENTER", 0xFF8D, "\r"),
    "NumpadAdd": Key("K_KP_PLUS", 0xFFAB, "+"),
    "NumpadSubtract": Key("K_KP_MINUS", 0xFFAD, "-"),
    "NumpadMultiply": Key("K_KP_MULTIPLY", 0xFFAA, "*"),
    "NumpadDivide": Key("K_KP_DIVIDE", 0xFFAF, "/"),
    "NumpadDecimal": Key("K_KP_PERIOD", 0xFFAE, "."),
    **{f"Key{c.upper()}": Key(f"K_{c}", ord(c), c) for c in "abcdefghijklmnopqrstuvwxyz"},
    **{f"Digit{d}": Key(f"K_{d}", ord(str(d)), str(d)) for d in range(10)},
    **{f"Numpad{d}": Key(f"K_KP{d}", 0xFFB0 + d, str(d)) for d in range(10)},
    **{f"F{n}": Key(f"K_F{n}", 0xFFBD + n, "") for n in range(1, 13)},
}
# What a browser's `key` says for a named key where it differs from the key's `code`.
_KEY_ALIASES = {" ": "Space", "Shift": "ShiftLeft", "Control": "ControlLeft", "Alt": "AltLeft", "Meta": "MetaLeft"}
# pygame's modifier flags (KMOD_*), by code: held modifiers go into every key event's `mod`.
MODIFIERS: dict[str, str] = {
    "ShiftLeft": "KMOD_LSHIFT",
    "ShiftRight": "KMOD_RSHIFT",
    "ControlLeft": "KMOD_LCTRL",
    "ControlRight": "KMOD_RCTRL",
    "AltLeft": "KMOD_LALT",
    "AltRight": "KMOD_RALT",
    "MetaLeft": "KMOD_LMETA",
    "MetaRight": "KMOD_RMETA",
}


def lookup(code: str, key: str) -> Key | None:
    """The key a browser named, None for one neither pygame nor X has a name for."""
    named = _NAMED.get(code) or _NAMED.get(_KEY_ALIASES.get(key, key))
    if named is not None:
        return named
    if len(key) == 1 and " " < key <= "~":
        # A printable ASCII character without a code: SDL's keycode is the unshifted character's
        # own, as is X's keysym for it.
        return Key(ord(key.lower()), ord(key), key)
    return None


def modifier(code: str, key: str) -> str | None:
    """The pygame KMOD_* name of a modifier key, None for another key."""
    return MODIFIERS.get(code) or MODIFIERS.get(_KEY_ALIASES.get(key, ""))
