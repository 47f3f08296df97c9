"""inboxd.daemon: the edges that hold sockets and loops.

The edges that hold sockets and loops: the SMTP/LMTP listener, the IMAP poller and its
leader lock, the outbound sender, `inboxd check`, and `serve`, which wires them (and the
web app) into one process. The top room: nothing imports it but `cli`.
"""
