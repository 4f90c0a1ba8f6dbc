"""Subscriptions: subscribers and their CSV, the use cases, signed links and their keys, and the endpoints."""
