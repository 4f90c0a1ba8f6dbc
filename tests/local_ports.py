"""Free TCP ports on 127.0.0.1 for servers that must be told their port before they start.

The suite runs in several pytest-xdist workers at once, and each of them, moto,
aiosmtpd and every HTTP client take ephemeral ports all the time: a port the
kernel handed out and freed again may be taken by someone else before the server
binds it. So each worker picks from a block of its own below the kernel's
ephemeral range (32768 and up on Linux), which nobody is handed by chance.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

_FIRST, _BLOCK, _BLOCKS = 20_000, 1_000, 12


def _worker_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = _FIRST + (int(worker) if worker.isdigit() else 0) % _BLOCKS * _BLOCK
    return range(start, start + _BLOCK)


_BLOCK_PORTS = _worker_block()
# A random start: two suites running side by side on one machine rarely meet.
_NEXT = itertools.count(random.randrange(len(_BLOCK_PORTS)))


def free_port() -> int:
    """A port of this worker's block that nobody holds now; the next call tries the next one."""
    for _ in range(len(_BLOCK_PORTS)):
        port = _BLOCK_PORTS[next(_NEXT) % len(_BLOCK_PORTS)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {_BLOCK_PORTS}")
