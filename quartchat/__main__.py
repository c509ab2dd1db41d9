"""`python -m quartchat`: the `quartchat` command."""

from quartchat.process.cli import main

main()
