"""Newsletters: issues of what was published, rendered per tag set, sent exactly once."""
