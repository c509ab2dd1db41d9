"""`quartchat serve` under an aiosqlite that lost the private call commit.py uses."""

import aiosqlite

from quartchat.process.cli import main

if __name__ == "__main__":
    del aiosqlite.Connection._execute
    main(["serve"])
