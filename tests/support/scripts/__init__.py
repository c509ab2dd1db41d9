"""Programs tests run in a process of their own, each one module, run with
`python -m tests.support.scripts.NAME ARGS` (`run_script` in `tests.support.servers`).

Tortoise keeps the first engine it opens for the life of a process, so database work
that a test drives directly runs in a fresh interpreter; a load that would slow the
test's own process (a flood of replays) runs in one too. A script fails by raising:
its exit status is what the test checks.
"""
