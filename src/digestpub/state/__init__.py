"""The publish state: what was seen, each summary's newest version, each feed's window, the publish log.

``catalog`` is the unit of work a run changes and commits once; ``keys`` is the
one place that knows where each part lives in the state store.
"""
