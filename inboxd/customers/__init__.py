"""Customers: one profile per person, whichever address they write from (SPEC §10.7)."""
