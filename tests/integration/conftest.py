"""Fixtures shared by the integration tests beyond those of tests/conftest.py."""

from tests.websub_support import hub_server

__all__ = ["hub_server"]
