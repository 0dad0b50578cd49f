"""fleet.tunnel: the public-URL step of the runner workflows. cloudflared needs the internet, so the
binary here is a stand-in that writes what cloudflared writes when a quick tunnel is up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from fleet.tunnel import quick_tunnel_url
from tests.support.servers import ROOT

CLOUDFLARED_LINES = """\
2026-11-25T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2026-11-25T10:00:01Z INF +--------------------------------------------------------------------------------------------+
2026-11-25T10:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
2026-11-25T10:00:01Z INF |  https://brave-otter-lines-sample.trycloudflare.com                                        |
"""


def test_the_quick_tunnel_url_is_read_from_cloudflareds_log():
    found = [url for line in CLOUDFLARED_LINES.splitlines() if (url := quick_tunnel_url(line))]
    assert found == ["https://brave-otter-lines-sample.trycloudflare.com"]


def test_cli_prints_and_exports_the_public_url(tmp_path):
    fake = tmp_path / "cloudflared"
    fake.write_text("#!/bin/sh\ncat <<'EOF'\n" + CLOUDFLARED_LINES + "EOF\nexec sleep 5\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    output = tmp_path / "github_output"
    done = subprocess.run([sys.executable, "-m", "fleet.tunnel", "--port", "7860", "--binary", str(fake),
                           "--log", str(tmp_path / "cf.log")], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "public_url=https://brave-otter-lines-sample.trycloudflare.com"
    assert output.read_text() == "public_url=https://brave-otter-lines-sample.trycloudflare.com\n"
    named = subprocess.run([sys.executable, "-m", "fleet.tunnel", "--binary", str(fake), "--named-url",
                            "https://hub.example.org/", "--log", str(tmp_path / "cf2.log")], cwd=ROOT,
                           capture_output=True, text=True, timeout=30, env={**os.environ, "GITHUB_OUTPUT": ""})
    assert named.returncode != 0 and "CLOUDFLARE_TUNNEL_TOKEN" in named.stderr + named.stdout
