"""The HTTP side: routing metadata, middlewares, JSON helpers and views."""
