"""The typer application: parses arguments, calls inboxd, prints. No domain logic here."""
