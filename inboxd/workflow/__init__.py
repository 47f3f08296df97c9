"""inboxd.workflow: the service layer of SPEC §10.

The service layer: business calendars, SLA policies, business rules, satisfaction
surveys, reports, the knowledge base and customer profiles (SPEC §10). May import
`agents`, `queues`, `tickets`, `mail` and the top-level modules.
"""
