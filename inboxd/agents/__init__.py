"""inboxd.agents: agents working by email.

Agents by email: the agent directory, who is trusted to run commands, notifications,
relayed replies, mail from agents and the operations the web, API and CLI share. May
import `queues`, `tickets`, `mail` and the top-level modules.
"""
