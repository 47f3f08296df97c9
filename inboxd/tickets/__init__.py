"""inboxd.tickets: tickets and their one state-change path.

Tickets and their one state-change path: threading, duplicates, storing messages and
events, the action functions, the command registry and its commands, reply tokens and
status links, read queries. May import `mail` and the top-level modules.
"""
