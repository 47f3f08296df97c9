"""inboxd: an email-centric shared inbox and helpdesk daemon."""

__version__ = "0.1.0"
