"""The teacher's desktop window (`labrunner desktop`)."""

from ui.desktop.launcher import run

__all__ = ["run"]
