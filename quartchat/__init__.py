"""quartchat: a real-time room chat backend on Quart and Hypercorn."""

from quartchat.process.app import create_app

__all__ = ["create_app"]
