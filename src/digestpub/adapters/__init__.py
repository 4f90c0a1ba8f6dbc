"""Adapters of the ports in ``digestpub.ports``, one module per outside system.

``digestpub.app.locations`` opens the one a setting names.
"""
