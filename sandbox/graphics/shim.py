"""The graphics shim: loaded into a graphical Python program (by `boot/sitecustomize.py`) so that
pygame, tkinter/turtle and matplotlib run headless, end on time, and leave pictures behind.

- pygame (SDL's dummy video driver): display flips and updates are sampled into frames — at most
  ten a second, fewer when sampling is slow, identical ones skipped, shrunk to the largest size.
  When the frame budget is spent, the picture has stood still for a while, or the time is nearly
  up, a QUIT event is posted, so a loop that handles QUIT ends normally.
- tkinter and turtle (Xvfb): each Tk window is looked at from Tk's own event loop and read from
  Xvfb's screen file; its last picture is kept. When it has stood still for a while or the time
  is nearly up, the window is closed, so `mainloop()` and `turtle.done()` return — but never from
  inside the program's own `update()` calls (turtle draws through them), where closing the window
  would make the program's next drawing call fail.
- matplotlib (Agg): every figure shown or saved becomes a picture; `show()` never blocks.

The harness passes its settings in LABRUNNER_GRAPHICS (JSON, see `Config`) and reads the pictures
from the folder it named, ordered by time. Each picture is written whole (temporary name, then
rename), so a program stopped at any moment leaves only whole pictures. Hooks attach when the
program imports what they patch, so a program pays nothing for a toolkit it does not use. A hook
must never break a program: one that fails says so once on stderr and gets out of the way.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import io
import json
import os
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType, TracebackType
from typing import Any

from . import png, xwd
from .live_link import LiveLink, Placement, fit
from .pygame_input import PygameInput

CONFIG_ENV = "LABRUNNER_GRAPHICS"
# <pid>-<sequence>-<kind>.png: the pid keeps pictures of a program's own python children apart.
PICTURE_NAME = re.compile(r"^(\d{1,10})-(\d{4,6})-(frame|figure|window)\.png$")
SAMPLE_S = 0.1  # pygame frames are sampled at most ten times a second,
CAPTURE_SHARE = 4  # and less often when sampling is slow: it takes at most a fifth of the time.
LATEST_S = 0.5  # once no more pictures may be added, the newest replaces the last this often
IDLE_S = 2.0  # a picture unchanged this long is finished: the event loop is ended
REPOST_S = 1.0  # a QUIT the program has not acted on is posted again this often
POLL_MS = 200  # Tk windows are looked at this often from Tk's own event loop
TICK_S = 0.1  # the background clock's period
# smoothscale averages every source pixel, which looks right; past this many pixels it would cost
# the program seconds per frame, so huge surfaces are sampled (nearest pixel) instead.
_SMOOTH_MAX_PIXELS = 4_000_000
_STARTED = time.monotonic()


@dataclass(frozen=True)
class Config:
    folder: str
    max_images: int  # pictures of this test, all kinds together
    max_dimension: int  # longest side of a picture, in pixels
    max_bytes: int  # of all pictures of this test
    quit_after_s: float  # from the program's start: end event loops after this
    screen: str | None  # Xvfb's screen file (XWD) when a virtual display runs
    # A live run's: the live link's folder, and the time between two frames. Nothing is kept in
    # the pictures folder then, and only the time limit ends an event loop.
    live_dir: str | None = None
    live_frame_s: float = 0.0

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Config | None:
        raw = os.environ.get(CONFIG_ENV)
        return None if not raw else cls(**json.loads(raw))


_noted: set[str] = set()


def note(text: str) -> None:
    """Tell the student once, on stderr, in the harness's own [bracketed] style."""
    if text in _noted:
        return
    _noted.add(text)
    try:
        os.write(2, f"[{text}]\n".encode())
    except OSError:
        pass  # stderr closed by the program: nobody to tell


def _safely(action: Callable[..., Any], *args: Any) -> Any:
    try:
        return action(*args)
    except Exception as exc:  # the shim must never be what breaks a program
        note(f"pictures are incomplete: the graphics shim failed ({type(exc).__name__}: {exc})")
        return None


class Slot:
    """One picture file; a slot may be written again with a newer picture."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.size = 0
        self.digest = 0
        self.written = 0.0


class Pictures:
    """The pictures folder of this program, within the test's count and byte limits."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._slots: list[Slot] = []
        self._bytes = 0

    @property
    def room(self) -> int:
        return self._config.max_images - len(self._slots)

    def add(self, kind: str, picture: bytes, slot: Slot | None = None) -> Slot | None:
        """Write `picture` into a new slot, or over `slot`; the slot, or None when it does not fit."""
        digest = zlib.crc32(picture)
        with self._lock:
            for kept in self._slots:
                if kept.digest == digest and kept.size == len(picture):
                    return slot or kept  # the same picture again: kept once
            previous = slot.size if slot is not None else 0
            if self._bytes - previous + len(picture) > self._config.max_bytes:
                note("more was drawn than the picture limit allows: the first pictures are shown")
                return None
            if slot is None:
                if self.room <= 0:
                    return None
                slot = Slot(f"{os.getpid()}-{len(self._slots):04d}-{kind}.png")
                self._slots.append(slot)
            target = os.path.join(self._config.folder, slot.name)
            partial = os.path.join(self._config.folder, "." + slot.name)
            try:
                with open(partial, "wb") as out:
                    out.write(picture)
                os.replace(partial, target)
            except OSError as exc:
                note(f"a picture could not be kept: {exc.strerror}")
                return None
            self._bytes += len(picture) - previous
            slot.size, slot.digest, slot.written = len(picture), digest, time.monotonic()
            return slot


class Clock:
    """One background thread for what must happen even while the program is busy or blocked."""

    def __init__(self) -> None:
        self._duties: list[Callable[[float], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, duty: Callable[[float], None]) -> None:
        with self._lock:
            if duty in self._duties:
                return
            self._duties.append(duty)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="labrunner-graphics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            for duty in list(self._duties):
                _safely(duty, now)


def _time_is_up(config: Config, now: float) -> bool:
    return now - _STARTED >= config.quit_after_s


def _wrap_after(owner: Any, name: str, after: Callable[[], None]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _safely(after)
        return result

    setattr(owner, name, wrapper)


def _wrap_before(owner: Any, name: str, before: Callable[[], None]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _safely(before)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


class Pygame:
    """Frames from pygame's display, QUIT when it is time, and a word about sound."""

    def __init__(
        self, pygame: ModuleType, pictures: Pictures, clock: Clock, config: Config, live: LiveLink | None
    ) -> None:
        self.pg = pygame
        self.pictures = pictures
        self.clock = clock
        self.config = config
        self.live = live
        self.input = None if live is None else PygameInput(pygame)
        self.dirty = False  # live: the display was flipped since the last look
        self.next_sample = 0.0
        self.seen: int | None = None  # checksum of the last frame looked at
        self.saved: int | None = None  # checksum of the last frame kept
        self.changed: float | None = None  # when the display last showed something new
        self.latest: Slot | None = None  # the newest frame, once the budget is spent
        self.budget_spent = False
        self.quit_posted: float | None = None

    def install(self) -> None:
        display = self.pg.display
        _wrap_after(display, "flip", self.sample)
        _wrap_after(display, "update", self.sample)
        _wrap_before(self.pg, "quit", self.final)
        _wrap_before(display, "quit", self.final)
        set_mode = display.set_mode

        @functools.wraps(set_mode)
        def watched_set_mode(*args: Any, **kwargs: Any) -> Any:
            flags = kwargs.get("flags", args[1] if len(args) > 1 else 0)
            if isinstance(flags, int) and flags & self.pg.OPENGL:
                note("OpenGL windows cannot be shown in the sandbox: draw with pygame's own functions instead")
            surface = set_mode(*args, **kwargs)
            self.clock.add(self.tick)
            if self.live is not None and self.input is not None:
                handle = self.input.handle
                self.live.listen(lambda event: _safely(handle, event))
            return surface

        display.set_mode = watched_set_mode
        atexit.register(_safely, self.final)
        self._mute()
        if self.input is not None:
            self.input.install()
            for name in ("get", "poll", "pump", "peek"):
                _wrap_before(self.pg.event, name, self.catch_up)
            _wrap_before(self.pg.event, "wait", self.final)

    def _mute(self) -> None:
        try:
            mixer = self.pg.mixer
            sound = mixer.Sound
        except (AttributeError, NotImplementedError):  # pygame's stand-in for a module it lacks
            return

        def speak() -> None:
            note("sound is not played in the sandbox: the program runs, silently")

        class Sound(sound):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                speak()
                super().__init__(*args, **kwargs)

        Sound.__qualname__ = Sound.__name__ = sound.__name__
        Sound.__module__ = sound.__module__
        mixer.Sound = Sound
        music = getattr(mixer, "music", None)
        if music is not None:
            _wrap_before(music, "load", speak)

    def _pixels(self) -> tuple[int, int, bytes] | None:
        try:
            surface = self.pg.display.get_surface()
            if surface is None:
                return None
            width, height = surface.get_size()
            size = fit(width, height, self.config.max_dimension)
            if size != (width, height):
                if width * height <= _SMOOTH_MAX_PIXELS and surface.get_bitsize() in (24, 32):
                    surface = self.pg.transform.smoothscale(surface, size)
                else:
                    surface = self.pg.transform.scale(surface, size)
                width, height = size
            return width, height, self.pg.image.tostring(surface, "RGB")
        except self.pg.error:
            return None  # the display is gone (quit) or was never set up

    def sample(self, final: bool = False) -> None:
        """After a flip or update: keep the frame when it is time to look and it is new."""
        if self.live is not None:
            self._show(final)
            return
        now = time.monotonic()
        if not final and now < self.next_sample:
            return
        started = time.perf_counter()
        pixels = self._pixels()
        if pixels is None:
            return
        width, height, rgb = pixels
        checksum = zlib.crc32(rgb)
        if checksum != self.seen:
            self.seen, self.changed = checksum, now
        if checksum != self.saved:
            if self.pictures.room > 1:
                if self.pictures.add("frame", png.encode_rgb(width, height, rgb)) is None:
                    self.budget_spent = True  # out of bytes
                else:
                    self.saved = checksum
                    self.budget_spent = self.budget_spent or self.pictures.room <= 1
            elif final or self.latest is None or now - self.latest.written >= LATEST_S:
                # One place is kept back for the newest frame: what the display showed last.
                slot = self.pictures.add("frame", png.encode_rgb(width, height, rgb), self.latest)
                if slot is not None:
                    self.latest, self.saved = slot, checksum
        self.next_sample = now + max(SAMPLE_S, CAPTURE_SHARE * (time.perf_counter() - started))

    def _show(self, final: bool) -> None:
        """Live: the display as the newest frame, when it is time to look (or the program is about
        to wait for events) and it changed. A flip too soon after the last look is looked at once
        the program next asks for events, so the window's last state is never left unsent."""
        assert self.live is not None and self.input is not None
        now = time.monotonic()
        if not final and now < self.next_sample:
            self.dirty = True
            return
        self.dirty = False
        started = time.perf_counter()
        pixels = self._pixels()
        if pixels is None:
            return
        width, height, rgb = pixels
        checksum = zlib.crc32(rgb)
        if checksum != self.saved:
            self.live.show(png.encode_rgb(width, height, rgb))
            self.saved, self.input.shown = checksum, (width, height)
        self.next_sample = now + max(self.config.live_frame_s, CAPTURE_SHARE * (time.perf_counter() - started))

    def catch_up(self) -> None:
        if self.dirty:
            self._show(final=False)

    def final(self) -> None:
        if self.live is None or self.dirty:
            self.sample(final=True)

    def tick(self, now: float) -> None:
        """On the clock thread: post QUIT once the budget is spent, the display stood still, or
        time is nearly up (SDL's event queue may be fed from any thread). A live program's
        display may stand still for as long as its viewer thinks."""
        idle = self.live is None and self.changed is not None and now - self.changed >= IDLE_S
        if not (self.budget_spent or idle or _time_is_up(self.config, now)):
            return
        if self.quit_posted is not None and now - self.quit_posted < REPOST_S:
            return
        self.quit_posted = now
        try:
            if self.pg.display.get_init():
                self.pg.event.post(self.pg.event.Event(self.pg.QUIT))
        except self.pg.error:
            pass  # pygame is shutting down: nothing left to end


class TkWindow:
    """One Tk root window: looked at from Tk's event loop, pictured from Xvfb's screen file."""

    def __init__(self, tk: Tk, root: Any) -> None:
        self.tk = tk
        self.root = root
        self.rect: tuple[int, int, int, int] | None = None  # x, y, width, height on the screen
        self.slot: Slot | None = None
        self.seen: int | None = None
        self.saved: int | None = None
        self.changed = time.monotonic()
        self.done = False
        self.frame_id: int | None = None  # live: the window's frame, which a close request goes to
        self._lock = threading.Lock()
        root.after(POLL_MS, self.poll)

    def locate(self) -> bool:
        """Note where the window is on the screen (for the clock thread, and for the harness in a
        live run); False if not shown."""
        root = self.root
        if not root.winfo_ismapped():
            return False
        self.rect = (root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height())
        live = self.tk.live
        if live is not None:
            if self.frame_id is None:
                self.frame_id = int(root.wm_frame(), 16)
            live.place(Placement(*self.rect, self.frame_id))
        return True

    def after_update(self) -> None:
        """After the program's own update(): Tk has drawn and synced with the X server. A program
        that never runs Tk's event loop afterwards is still pictured, by the clock thread. (A few
        Tcl calls: little next to update()'s own round trip to the server.)"""
        if not self.done:
            try:
                self.locate()
            except self.tk.tkinter.TclError:
                self.done = True  # the window is gone

    def _look(self, flush: bool) -> xwd.Region | None:
        config = self.tk.config
        if flush:
            self.root.update_idletasks()
            if not self.locate():
                return None
            # A round trip to the X server: every drawing request sent so far has been carried out.
            self.root.winfo_pointerxy()
        if self.rect is None or config.screen is None:
            return None
        try:
            return xwd.read_region(config.screen, *self.rect, config.max_dimension)
        except (OSError, ValueError):
            return None  # the screen file is gone, or not what Xvfb writes: nothing to picture

    def _keep(self, region: xwd.Region, final: bool) -> None:
        checksum = zlib.crc32(region.rgb)
        now = time.monotonic()
        with self._lock:
            if checksum != self.seen:
                self.seen, self.changed = checksum, now
            if checksum == self.saved:
                return
            if final or self.slot is None or now - self.slot.written >= LATEST_S:
                picture = png.encode_rgb(region.width, region.height, region.rgb)
                slot = self.tk.pictures.add("window", picture, self.slot)
                if slot is not None:
                    self.slot, self.saved = slot, checksum

    def poll(self) -> None:
        """On Tk's thread, from its event loop (mainloop, or update() while turtle draws)."""
        if self.done:
            return
        try:
            if self.tk.live is not None:
                # The harness looks at the screen itself: only where the window is matters here.
                region = None
                self.locate()
            else:
                region = self._look(flush=True)
            if region is not None:
                self._keep(region, final=False)
            now = time.monotonic()
            still = region is not None and now - self.changed >= IDLE_S
            if not self.tk.updating and (still or _time_is_up(self.tk.config, now)):
                self.root.destroy()  # pictured by the destroy hook; mainloop returns
                return
            self.root.after(POLL_MS, self.poll)
        except self.tk.tkinter.TclError:
            self.done = True  # the window is gone

    def finish(self) -> None:
        """The last picture, before the window goes."""
        if self.done:
            return
        self.done = True
        if self.tk.live is not None:
            return  # the harness has been looking all along
        try:
            region = self._look(flush=True)
        except self.tk.tkinter.TclError:
            return
        if region is not None:
            self._keep(region, final=True)

    def tick(self, now: float) -> None:
        """On the clock thread, near the end: the screen as it is, even while the program is busy
        elsewhere and Tk gets no chance to run. Only the screen file is read, never Tk."""
        if not self.done and self.tk.live is None and _time_is_up(self.tk.config, now):
            region = self._look(flush=False)
            if region is not None:
                self._keep(region, final=False)


class Tk:
    """Watches every Tk root (turtle's screen is one) and knows when the program is inside update()."""

    def __init__(
        self, tkinter: ModuleType, pictures: Pictures, clock: Clock, config: Config, live: LiveLink | None
    ) -> None:
        self.tkinter = tkinter
        self.pictures = pictures
        self.clock = clock
        self.config = config
        self.live = live
        self.windows: list[TkWindow] = []
        self.updating = 0  # update() calls under way

    def install(self) -> None:
        tk_class = self.tkinter.Tk
        init, destroy = tk_class.__init__, tk_class.destroy

        @functools.wraps(init)
        def watched_init(root: Any, *args: Any, **kwargs: Any) -> None:
            init(root, *args, **kwargs)
            _safely(self._watch, root)

        @functools.wraps(destroy)
        def watched_destroy(root: Any) -> None:
            for window in self.windows:
                if window.root is root:
                    _safely(window.finish)
            destroy(root)

        tk_class.__init__ = watched_init
        tk_class.destroy = watched_destroy
        update = self.tkinter.Misc.update

        @functools.wraps(update)
        def counted_update(widget: Any) -> None:
            self.updating += 1
            try:
                update(widget)
            finally:
                self.updating -= 1
            for window in self.windows:
                window.after_update()

        self.tkinter.Misc.update = counted_update
        atexit.register(self._final)

    def _watch(self, root: Any) -> None:
        if self.config.screen is None:
            return
        window = TkWindow(self, root)
        self.windows.append(window)
        self.clock.add(window.tick)

    def _final(self) -> None:
        for window in self.windows:
            _safely(window.finish)


class Plots:
    """Every matplotlib figure shown or saved, drawn by Agg at a size within the limits."""

    def __init__(self, pictures: Pictures, config: Config, live: LiveLink | None) -> None:
        self.pictures = pictures
        self.config = config
        self.live = live
        self.savefig: Callable[..., Any] | None = None

    def hook_matplotlib(self, matplotlib: ModuleType) -> None:
        use = matplotlib.use

        @functools.wraps(use)
        def agg_only(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if str(backend).lower() != "agg":
                note(f"plots are drawn off-screen here: matplotlib.use({backend!r}) was replaced by Agg")
            return use("agg", *args, **kwargs)

        matplotlib.use = agg_only

    def hook_figure(self, module: ModuleType) -> None:
        savefig = self.savefig = module.Figure.savefig

        @functools.wraps(savefig)
        def kept_savefig(figure: Any, *args: Any, **kwargs: Any) -> Any:
            result = savefig(figure, *args, **kwargs)
            _safely(self.keep, figure)
            return result

        module.Figure.savefig = kept_savefig

    def hook_pyplot(self, pyplot: ModuleType) -> None:
        def show(*args: Any, **kwargs: Any) -> None:
            """Every open figure becomes a picture, then closes, as if its window were closed."""
            from matplotlib._pylab_helpers import Gcf

            for manager in Gcf.get_all_fig_managers():
                _safely(self.keep, manager.canvas.figure)
            pyplot.close("all")

        show.__doc__ = pyplot.show.__doc__
        pyplot.show = show

    def keep(self, figure: Any) -> None:
        if self.savefig is None:
            return
        width, height = figure.get_size_inches()
        # Agg rounds pixel sizes down, so this dpi keeps the longest side within the limit.
        dpi = min(figure.dpi, (self.config.max_dimension - 0.5) / max(width, height, 0.01))
        buffer = io.BytesIO()
        self.savefig(figure, buffer, format="png", dpi=dpi)
        if self.live is not None:
            self.live.show(buffer.getvalue())  # a live run shows the newest figure
        else:
            self.pictures.add("figure", buffer.getvalue())


# Loaders made for one module each: patching one touches no other module.
_FILE_LOADERS = (
    importlib.machinery.SourceFileLoader,
    importlib.machinery.SourcelessFileLoader,
    importlib.machinery.ExtensionFileLoader,
)


class AfterImport(importlib.abc.MetaPathFinder):
    """Runs a hook right after a module's own code has run, the first time it is imported."""

    def __init__(self, hooks: dict[str, Callable[[ModuleType], None]]) -> None:
        self._hooks = hooks

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        hook = self._hooks.pop(name, None)
        if hook is None:
            return None
        # None lets the import system ask the other finders itself: the module loads unhooked.
        return _safely(self._hooked_spec, name, path, target, hook)

    def _hooked_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None, hook: Callable[[ModuleType], None]
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if isinstance(loader, _FILE_LOADERS):
            run = loader.exec_module

            def exec_module(module: ModuleType) -> None:
                run(module)
                _safely(hook, module)

            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _explain(
    original: Callable[[type[BaseException], BaseException, TracebackType | None], Any],
) -> Callable[[type[BaseException], BaseException, TracebackType | None], None]:
    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        original(kind, value, tb)
        if isinstance(value, ModuleNotFoundError) and value.name:
            note(
                f"the module {value.name.partition('.')[0]!r} is not installed in the sandbox; graphical programs"
                " can use pygame, turtle, tkinter and matplotlib (without sound)"
            )
        elif kind.__name__ == "TclError" and "display" in str(value):
            note("windows cannot be opened here: run this program as a graphical one (turtle or tkinter)")

    return excepthook


def install() -> None:
    """Called at start-up (sitecustomize): nothing is imported or started until it is needed."""
    config = Config.from_env()
    if config is None:
        return
    pictures = Pictures(config)
    clock = Clock()
    live = None if config.live_dir is None else LiveLink(config.live_dir)
    plots = Plots(pictures, config, live)
    sys.meta_path.insert(
        0,
        AfterImport(
            {
                "pygame": lambda module: Pygame(module, pictures, clock, config, live).install(),
                "tkinter": lambda module: Tk(module, pictures, clock, config, live).install(),
                "matplotlib": plots.hook_matplotlib,
                "matplotlib.figure": plots.hook_figure,
                "matplotlib.pyplot": plots.hook_pyplot,
            }
        ),
    )
    sys.excepthook = _explain(sys.excepthook)
