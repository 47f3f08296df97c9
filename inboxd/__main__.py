"""`python -m inboxd` runs the command line."""

from cli.main import main

main()
