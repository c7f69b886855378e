"""The viewer's keys and mouse, in a live pygame program: as the events SDL would have queued
(KEYDOWN/KEYUP with TEXTINPUT, MOUSEMOTION, MOUSEBUTTONDOWN/UP, QUIT for a closed window), and in
what pygame says is held (`key.get_pressed`, `key.get_mods`, `mouse.get_pos`,
`mouse.get_pressed`), which SDL's dummy video driver never learns of by itself.

Events arrive on the live link's thread; SDL's event queue may be fed from any thread.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import keys
from .live_link import to_window

_BUTTONS = (1, 2, 3)  # left, middle, right, as SDL and the protocol number them


class _Pressed(tuple):  # type: ignore[type-arg]
    """pygame's own pressed-keys table, with the viewer's held keys pressed too."""

    _inner: Any
    _held: frozenset[int]

    def __new__(cls, inner: Any, held: frozenset[int]) -> _Pressed:
        pressed = super().__new__(cls, inner)
        pressed._inner, pressed._held = inner, held
        return pressed

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int) and key in self._held:
            return True
        return self._inner[key]


class PygameInput:
    def __init__(self, pygame: ModuleType) -> None:
        self.pg = pygame
        self.held: set[int] = set()
        self.modifiers: set[str] = set()  # KMOD_* names
        self.buttons: set[int] = set()
        self.pos: tuple[int, int] | None = None
        self.shown: tuple[int, int] | None = None  # the size of the last frame sent, once one was

    def install(self) -> None:
        key, mouse = self.pg.key, self.pg.mouse
        get_pressed, get_mods = key.get_pressed, key.get_mods
        get_pos, mouse_pressed = mouse.get_pos, mouse.get_pressed

        def pressed_keys() -> Any:
            return _Pressed(get_pressed(), frozenset(self.held))

        def mods() -> int:
            return get_mods() | self._mod()

        def pos() -> tuple[int, int]:
            return self.pos if self.pos is not None else get_pos()

        def pressed_buttons(*args: Any, **kwargs: Any) -> tuple[bool, ...]:
            own = mouse_pressed(*args, **kwargs)
            return tuple(bool(held) or index + 1 in self.buttons for index, held in enumerate(own))

        for patch, original in (
            (pressed_keys, get_pressed),
            (mods, get_mods),
            (pos, get_pos),
            (pressed_buttons, mouse_pressed),
        ):
            patch.__doc__ = original.__doc__
        key.get_pressed, key.get_mods = pressed_keys, mods
        mouse.get_pos, mouse.get_pressed = pos, pressed_buttons

    def _mod(self) -> int:
        mod = 0
        for name in self.modifiers:
            mod |= getattr(self.pg, name, 0)
        return mod

    def _post(self, kind: int, **attributes: Any) -> None:
        try:
            if self.pg.display.get_init():
                self.pg.event.post(self.pg.event.Event(kind, **attributes))
        except self.pg.error:
            pass  # pygame is shutting down: nobody left to tell

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "close":
            self._post(self.pg.QUIT)
        elif kind == "key":
            self._key(str(event.get("code", "")), str(event.get("key", "")), event.get("down") is True)
        elif kind == "pointer":
            x, y, button = event.get("x"), event.get("y"), event.get("button")
            if isinstance(x, int) and isinstance(y, int) and isinstance(button, int):
                self._pointer(str(event.get("kind")), x, y, button)

    def _key(self, code: str, name: str, down: bool) -> None:
        found = keys.lookup(code, name)
        if found is None:
            return
        value = getattr(self.pg, found.pygame, None) if isinstance(found.pygame, str) else found.pygame
        if not isinstance(value, int):
            return  # a key this pygame has no constant for
        modifier = keys.modifier(code, name)
        if modifier is not None:
            (self.modifiers.add if down else self.modifiers.discard)(modifier)
        (self.held.add if down else self.held.discard)(value)
        text = name if len(name) == 1 else found.text
        if not down:
            self._post(self.pg.KEYUP, key=value, mod=self._mod(), unicode=text, scancode=0)
            return
        self._post(self.pg.KEYDOWN, key=value, mod=self._mod(), unicode=text, scancode=0)
        commands = {"KMOD_LCTRL", "KMOD_RCTRL", "KMOD_LALT", "KMOD_LMETA", "KMOD_RMETA"} & self.modifiers
        if len(text) == 1 and text.isprintable() and not commands and hasattr(self.pg, "TEXTINPUT"):
            self._post(self.pg.TEXTINPUT, text=text)

    def _pointer(self, kind: str, x: int, y: int, button: int) -> None:
        try:
            surface = self.pg.display.get_surface()
        except self.pg.error:
            return
        if surface is None:
            return
        window = surface.get_size()
        pos = to_window(x, y, self.shown or window, window)
        if pos != self.pos:
            before = self.pos or pos
            self.pos = pos
            held = tuple(b in self.buttons for b in _BUTTONS)
            self._post(self.pg.MOUSEMOTION, pos=pos, rel=(pos[0] - before[0], pos[1] - before[1]), buttons=held)
        if kind in ("down", "up") and button in _BUTTONS:
            (self.buttons.add if kind == "down" else self.buttons.discard)(button)
            event = self.pg.MOUSEBUTTONDOWN if kind == "down" else self.pg.MOUSEBUTTONUP
            self._post(event, pos=pos, button=button)
