"""quartchat: a real-time room chat backend on Quart and Hypercorn."""

from .app import create_app

__all__ = ["create_app"]
