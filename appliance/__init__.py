"""Labrunner's server: settings, storage, accounts, classes, problems, HTTP API and CLI."""

__version__ = "0.1.0"
