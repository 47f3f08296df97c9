"""The bundled jinja2 templates (installed as the `inboxd_templates` package).

Admins override any of them by pointing `[inboxd] templates_dir` at a folder holding
files of the same names.
"""
