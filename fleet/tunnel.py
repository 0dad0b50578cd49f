"""Makes a local port reachable from the internet for a runner, and says at which URL.

    python -m fleet.tunnel --port 7860                  # cloudflared quick tunnel (a new *.trycloudflare.com URL)
    python -m fleet.tunnel --port 7860 --named-url URL  # named tunnel: token in CLOUDFLARE_TUNNEL_TOKEN
    python -m fleet.tunnel --port 7860 --named-url URL --when-healthy  # connect once the app is healthy

cloudflared keeps running in the background (its log in --log); the public URL is printed as
`public_url=<url>` and appended to $GITHUB_OUTPUT when set, so a workflow step can pass it to
`app.py --public-url`. Another provider only has to print the same line.

`--when-healthy` (named tunnels, whose URL is known in advance) starts the connector only once
http://127.0.0.1:<port>/health answers 200: a successor hub sharing the URL with its predecessor gets
no traffic before it has imported the fleet and serves every model.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

QUICK_URL = re.compile(r"https://[a-z0-9-]+\.trycloudflare\.com")


def quick_tunnel_url(line: str) -> str | None:
    """The URL cloudflared announces for a quick tunnel, if this log line has it."""
    match = QUICK_URL.search(line)
    return match.group(0) if match else None


# Run by a detached Python: waits for the app's /health, then becomes cloudflared.
_WHEN_HEALTHY = """
import os, sys, time, urllib.request
while True:
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200:
            break
    except OSError:
        pass
    time.sleep(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def start(port: int, *, named_url: str | None, token: str | None, log: Path, binary: str = "cloudflared",
          timeout: float = 60.0, when_healthy: bool = False) -> str:
    if when_healthy and not named_url:
        raise SystemExit("--when-healthy needs --named-url: a quick tunnel's URL is only known once it connects")
    command = [binary, "tunnel", "--no-autoupdate"]
    if named_url:
        if not token:
            raise SystemExit("a named tunnel needs its token in CLOUDFLARE_TUNNEL_TOKEN")
        command += ["run", "--token", token]
    else:
        command += ["--url", f"http://127.0.0.1:{port}"]
    if when_healthy:
        command = [sys.executable, "-c", _WHEN_HEALTHY, f"http://127.0.0.1:{port}/health", *command]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    if named_url:
        return named_url.rstrip("/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if url := quick_tunnel_url(line):
                return url
        if process.poll() is not None:
            raise SystemExit(f"cloudflared exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.5)
    raise SystemExit(f"cloudflared announced no URL within {timeout:g} s (log: {log})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--named-url", default=None, help="public URL of a named tunnel (token from the env)")
    parser.add_argument("--log", type=Path, default=Path("cloudflared.log"))
    parser.add_argument("--binary", default="cloudflared")
    parser.add_argument("--when-healthy", action="store_true",
                        help="start the connector once the app's /health answers 200 (named tunnels)")
    args = parser.parse_args(argv)
    url = start(args.port, named_url=args.named_url or None, token=os.environ.get("CLOUDFLARE_TUNNEL_TOKEN"),
                log=args.log, binary=args.binary, when_healthy=args.when_healthy)
    print(f"public_url={url}")
    if output := os.environ.get("GITHUB_OUTPUT"):
        with open(output, "a") as sink:
            sink.write(f"public_url={url}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
