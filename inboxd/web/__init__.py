"""inboxd.web: the web app.

The web app: the agents' view, the customers' status page, sign-in, the REST API, and
what keeps them safe (security headers, CSRF, HTML sanitizing). Sits on top of the rooms
below and `pipeline`; imports nothing from `daemon`.
"""
