"""A successor command for loopback tests: `python tests/fleet/successor.py <instance id> <last generation>
[app.py flags...]`.

Picks a free port and becomes `python app.py` (same process id) with the settings it inherits from
its predecessor's environment (PLAYGROUND_*). From generation <last> on, it has no lifetime, so a
chain of hand-offs ends."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

instance_id, last_generation = sys.argv[1], int(sys.argv[2])
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
if int(instance_id.rpartition(".")[2] or 1) >= last_generation:
    os.environ.pop("PLAYGROUND_LIFETIME", None)
os.chdir(ROOT)
os.execv(sys.executable, [sys.executable, "app.py", "--port", str(port), "--instance-id", instance_id, *sys.argv[3:]])
