"""inboxd.mail: what a message is.

What a message is: MIME parsing, charsets, HTML to text, quoted history, subjects,
classification and command-tag lines. Pure functions of bytes and strings; no database,
no sockets. May import nothing of inboxd but `errors` and `config`.
"""
