"""The graphics pieces without Docker: PNG/APNG writing, Xvfb screen reading, the harness's checks
on what a program left, detection, the protocol, and the host's plan and checks."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import problem_archive
from appliance.sandbox_wiring import sandbox_settings
from appliance.settings import Settings, SettingsError
from runner import graphics as detection
from runner.executor import ExecRequest, InfraError, TestInput
from runner.sandbox_job import Transcript, plan_job, to_result
from runner.sandbox_settings import SandboxSettings
from sandbox import protocol
from sandbox.graphics import png, shim, xwd
from sandbox.harness import graphics as harness_graphics
from tests.graphics.pngdecode import decode, frame_count, frames
from tests.graphics.xwdfile import xwd_file


def solid(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    return png.encode_rgb(width, height, bytes(color) * (width * height))


def test_png_round_trip_and_header() -> None:
    rgb = bytes([255, 0, 0] * 3 + [0, 255, 0] * 3 + [0, 0, 255] * 3 + [9, 9, 9] * 3)
    data = png.encode_rgb(3, 4, rgb)
    header = png.read_header(data)
    assert (header.width, header.height, header.color_type, header.animated) == (3, 4, png.COLOR_RGB, False)
    picture = decode(data)
    assert picture.pixels == rgb and picture.rgb(2, 1) == (0, 255, 0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-5],  # cut short
        lambda d: d + b"junk",  # something after IEND
        lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:],  # a bit flipped in IHDR: bad CRC
        lambda d: b"GIF89a" + d[6:],
    ],
)
def test_damaged_pngs_are_refused(damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError):
        png.read_header(damage(solid(4, 4, (1, 2, 3))))


def test_frames_become_an_apng_without_recompression() -> None:
    colors = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    stills = [solid(8, 6, color) for color in colors]
    movie = png.animate([png.Frame(f, delay) for f, delay in zip(stills, (100, 250, 100), strict=True)])
    assert png.read_header(movie).animated and frame_count(movie) == 3
    assert decode(movie).rgb(0, 0) == (255, 0, 0)  # the default image is the first frame
    played = frames(movie)  # as a viewer plays it, every frame whole, in order, for its time
    assert [(p.width, p.height, p.rgb(0, 0), p.rgb(7, 5), p.delay_ms) for p in played] == [
        (8, 6, color, color, delay) for color, delay in zip(colors, (100, 250, 100), strict=True)
    ]
    kinds = [kind for kind, _ in png.chunks(movie)]
    assert kinds.count(b"fcTL") == 3 and kinds.count(b"fdAT") == 2
    with pytest.raises(ValueError):
        png.animate([png.Frame(stills[0], 100), png.Frame(solid(9, 6, (0, 0, 0)), 100)])


def test_a_screen_region_is_cropped_and_shrunk(tmp_path: Path) -> None:
    screen = tmp_path / "Xvfb_screen0"
    # Red left of x=30, blue from there; a green row at y=10.
    screen.write_bytes(
        xwd_file(64, 32, lambda x, y: (0, 255, 0) if y == 10 else ((255, 0, 0) if x < 30 else (0, 0, 255)))
    )
    region = xwd.read_region(str(screen), 20, 5, 20, 10, max_dimension=100)
    assert region is not None and (region.width, region.height) == (20, 10)
    picture = decode(png.encode_rgb(region.width, region.height, region.rgb))
    assert picture.rgb(0, 0) == (255, 0, 0) and picture.rgb(15, 0) == (0, 0, 255) and picture.rgb(3, 5) == (0, 255, 0)
    shrunk = xwd.read_region(str(screen), 0, 0, 64, 32, max_dimension=16)
    assert shrunk is not None and (shrunk.width, shrunk.height) == (16, 8)
    assert xwd.read_region(str(screen), 100, 100, 10, 10, max_dimension=16) is None  # off the screen


@pytest.mark.parametrize(
    ("code", "graphical", "display"),
    [
        ("import pygame\n", True, False),
        ("from turtle import *\nforward(10)\n", True, True),
        ("def main():\n    import tkinter as tk\n", True, True),
        ("import matplotlib.pyplot as plt\n", True, False),
        ("import pyglet\n", True, True),
        ("import math\nprint(1)\n", False, True),
        ("import pygame\nthis is not python(\n", True, False),  # the line fallback
        ("from . import turtle\n", False, True),  # a relative import is the program's own module
    ],
)
def test_graphical_programs_are_recognised(code: str, graphical: bool, display: bool) -> None:
    assert detection.is_graphical("python", code) is graphical
    assert detection.needs_display(code) is display
    assert detection.is_graphical("c", code) is False


def test_pictures_travel_in_test_reports() -> None:
    picture = solid(2, 2, (1, 2, 3))
    report = protocol.TestReport(
        "t", "ok", 0, None, 5, b"", b"", images=(protocol.Image(protocol.MEDIA_PNG, "frame 1", 2, 2, picture),)
    )
    assert protocol.decode_event(protocol.encode_event(report)) == report
    bad = protocol.encode_event(report).replace(b"image/png", b"text/html")
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_event(bad)
    job = plan_job(_request("import turtle"), SandboxSettings()).job
    assert protocol.read_job(io.BytesIO(protocol.encode_job(job)), 1 << 20) == job


def _request(code: str, language: str = "python", tests: int = 1) -> ExecRequest:
    inputs = [TestInput(f"t{i}", b"") for i in range(tests)]
    return ExecRequest(language=language, code=code, tests=inputs, time_limit_ms=2000, graphical=True)


def test_graphical_jobs_get_the_graphical_wall_time_and_room_for_pictures() -> None:
    settings = SandboxSettings(graphical_wall_time_s=7.5, graphics_max_image_bytes=1 << 20)
    plain = plan_job(ExecRequest(language="python", code="import turtle", tests=[TestInput("t", b"")]), settings)
    drawn = plan_job(_request("import turtle", tests=3), settings)
    assert plain.job.graphics is None
    assert drawn.job.graphics == protocol.Graphics(20, 800, 1 << 20, display=True)
    assert (drawn.job.run.limits.wall_ms, drawn.job.run.limits.cpu_ms) == (7500, 8500)
    assert drawn.container_memory_bytes > plain.container_memory_bytes
    assert drawn.max_event_bytes >= plain.max_event_bytes + (4 << 20) // 3
    # Only Python programs get the shim; others run as usual.
    assert plan_job(_request("int main(){}", language="c"), settings).job.graphics is None


def _result(images: tuple[protocol.Image, ...], code: str = "import pygame") -> list[list[str]]:
    plan = plan_job(_request(code), SandboxSettings(graphics_max_dimension=100, graphics_max_image_bytes=10_000))
    report = protocol.TestReport("t0", "ok", 0, None, 5, b"", b"", images=images)
    checked = protocol.CompileReport(ok=True, output=b"", time_ms=5)  # the syntax check
    result = to_result(plan, Transcript([checked, report, protocol.Done()], "done", b""), oom_killed=False)
    return [[i.label for i in t.images] for t in result.tests]


def test_the_host_checks_the_pictures_it_is_sent() -> None:
    good = protocol.Image(protocol.MEDIA_PNG, "frame 1", 50, 40, solid(50, 40, (0, 0, 0)))
    assert _result((good,)) == [["frame 1"]]
    wrong_size = protocol.Image(protocol.MEDIA_PNG, "frame 1", 51, 40, good.data)
    too_large = protocol.Image(protocol.MEDIA_PNG, "frame 1", 200, 40, solid(200, 40, (0, 0, 0)))
    broken = protocol.Image(protocol.MEDIA_PNG, "frame 1", 50, 40, good.data[:-3])
    not_animated = protocol.Image(protocol.MEDIA_APNG, "animation", 50, 40, good.data)
    noise = protocol.Image(protocol.MEDIA_PNG, "f", 100, 100, png.encode_rgb(100, 100, os.urandom(30_000)))
    for images in ((wrong_size,), (too_large,), (broken,), (not_animated,), (noise,)):
        with pytest.raises(InfraError):
            _result(images)


@pytest.fixture
def pictures_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    monkeypatch.setattr(harness_graphics, "PICTURES_DIR", str(folder))
    return folder


def _session(allowance: int, max_images: int = 5) -> harness_graphics.Session:
    return harness_graphics.Session(protocol.Graphics(max_images, 64, allowance, display=False), allowance, {})


def _shim_pictures(folder: Path, max_images: int = 5, max_bytes: int = 1 << 20) -> shim.Pictures:
    return shim.Pictures(shim.Config(str(folder), max_images, 64, max_bytes, 5.0, None))


def test_the_harness_keeps_checked_pictures_and_animates_the_frames(pictures_dir: Path) -> None:
    pictures = _shim_pictures(pictures_dir)
    for color in ((255, 0, 0), (0, 255, 0), (255, 0, 0)):  # the third repeats the first: kept once
        pictures.add("frame", solid(16, 16, color))
        time.sleep(0.02)
    pictures.add("figure", solid(8, 8, (9, 9, 9)))
    (pictures_dir / "1-0099-frame.png").write_bytes(b"not a png")  # a program may write anything
    (pictures_dir / "1-0098-frame.png").symlink_to("/etc/passwd")
    (pictures_dir / "notes.txt").write_text("ignored")
    (pictures_dir / "1-0097-frame.png").write_bytes(solid(65, 10, (0, 0, 0)))  # over the largest side
    images, notes = harness_graphics.collect(_session(1 << 20))
    assert [i.label for i in images] == ["frame 1", "frame 2", "figure 1", "animation"]
    assert images[-1].media_type == protocol.MEDIA_APNG and frame_count(images[-1].data) == 2
    assert len(notes) == 1 and notes[0].startswith("2 picture(s) could not be shown")


def test_the_harness_keeps_within_the_byte_allowance(pictures_dir: Path) -> None:
    pictures = _shim_pictures(pictures_dir)
    frames = [solid(16, 16, (n * 40, 0, 0)) for n in range(4)]
    for frame in frames:
        pictures.add("frame", frame)
        time.sleep(0.02)
    allowance = 2 * len(frames[0]) + 10
    images, notes = harness_graphics.collect(_session(allowance))
    # The last frame (what the display showed at the end) comes first, then the earliest.
    assert [i.data for i in images] == [frames[0], frames[3]]
    assert any("left out" in note for note in notes) and any("animation" in note for note in notes)


def test_the_shim_keeps_to_its_count_and_byte_limits(tmp_path: Path) -> None:
    pictures = _shim_pictures(tmp_path, max_images=2, max_bytes=300)
    first = pictures.add("frame", solid(4, 4, (1, 1, 1)))
    assert first is not None and pictures.add("frame", solid(4, 4, (1, 1, 1))) is first
    second = pictures.add("frame", solid(4, 4, (2, 2, 2)))
    assert second is not None and pictures.room == 0
    assert pictures.add("frame", solid(4, 4, (3, 3, 3))) is None
    replaced = pictures.add("frame", solid(4, 4, (4, 4, 4)), second)  # the newest replaces the last
    assert replaced is second and decode((tmp_path / second.name).read_bytes()).rgb(0, 0) == (4, 4, 4)
    assert pictures.add("frame", png.encode_rgb(20, 20, os.urandom(1200)), second) is None  # over 300 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def test_graphics_settings_reach_the_sandbox(settings_factory: Callable[..., Settings]) -> None:
    names = ("graphical_wall_time_s", "graphics_max_frames", "graphics_max_dimension", "graphics_max_image_bytes")
    defaults = sandbox_settings(settings_factory())
    assert [getattr(defaults, n) for n in names] == [getattr(SandboxSettings(), n) for n in names]
    assert defaults.graphical_wall_time_s == 10.0
    chosen = sandbox_settings(
        settings_factory(
            graphical_wall_time_s=4.5,
            graphics_max_frames=7,
            graphics_max_dimension=300,
            graphics_max_image_bytes=1000,
        )
    )
    assert (
        chosen.graphical_wall_time_s,
        chosen.graphics_max_frames,
        chosen.graphics_max_dimension,
        chosen.graphics_max_image_bytes,
    ) == (4.5, 7, 300, 1000)
    with pytest.raises(SettingsError):
        settings_factory(graphical_wall_time_s=0.5)


def test_a_problem_archive_keeps_the_graphical_flag(settings_factory: Callable[..., Settings]) -> None:
    problem = {
        "title": "Draw",
        "statement": "Draw a square.",
        "language": "python",
        "time_limit_ms": 1000,
        "memory_limit_mb": 128,
        "comparison": "exact",
        "tolerance": 0.0,
        "graphical": True,
        "hidden_feedback": "summary",
        "starter_code": "",
        "test_cases": [],
    }
    assert problem_archive.unpack(problem_archive.pack(problem), settings_factory())["graphical"] is True


def test_nothing_a_program_leaves_makes_the_harness_fail(pictures_dir: Path, tmp_path: Path) -> None:
    pictures = _shim_pictures(pictures_dir)
    pictures.add("frame", solid(16, 16, (255, 0, 0)))
    time.sleep(0.02)
    # A still with a suggested palette is fine to show, but cannot be an APNG frame.
    plain = solid(16, 16, (0, 255, 0))
    palette = struct.pack(">I4s3sI", 3, b"PLTE", b"\0\0\0", zlib.crc32(b"PLTE\0\0\0"))
    (pictures_dir / f"{os.getpid()}-0001-frame.png").write_bytes(plain[:33] + palette + plain[33:])
    images, _ = harness_graphics.collect(_session(1 << 20))
    assert [i.label for i in images] == ["frame 1", "frame 2"]
    # The folder replaced by a symlink: not followed.
    pictures_dir.rename(tmp_path / "elsewhere")
    pictures_dir.symlink_to(tmp_path / "elsewhere")
    assert harness_graphics.collect(_session(1 << 20)) == ([], [])
