"""`python -m quartchat`: the `quartchat` command."""

from .cli import main

main()
