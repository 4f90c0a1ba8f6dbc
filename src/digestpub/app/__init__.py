"""The entry points: the command line, the cloud functions' wiring and the local server."""
