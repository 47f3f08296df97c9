"""inboxd.queues: the spool in and the outbox out.

The two queues in the database: the spool that edges fill before they answer 250, and
the transactional outbox that every outgoing mail is written into (with its send caps,
suppressions and bounce matching). Sending itself is the daemon's (`daemon.sender`). May
import `tickets`, `mail` and the top-level modules.
"""
