"""fleet.tunnel: the public-URL step of the runner workflows. cloudflared needs the internet, so the
binary here is a stand-in that writes what cloudflared writes when a quick tunnel is up."""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import sys
import threading
import time

from fleet.tunnel import quick_tunnel_url
from tests.support.servers import ROOT, wait_for

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


def test_when_healthy_connects_only_once_the_app_answers(tmp_path):
    """A successor hub's connector joins the shared URL only after its /health says 200."""
    status = {"code": 503}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    marker = tmp_path / "connected"
    fake = tmp_path / "cloudflared"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 5\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    try:
        done = subprocess.run([sys.executable, "-m", "fleet.tunnel", "--port", str(app.server_port), "--binary",
                               str(fake), "--named-url", "https://hub.example.org", "--when-healthy",
                               "--log", str(tmp_path / "cf.log")], cwd=ROOT, capture_output=True, text=True,
                              timeout=30, env={**os.environ, "CLOUDFLARE_TUNNEL_TOKEN": "t", "GITHUB_OUTPUT": ""})
        assert done.returncode == 0 and done.stdout.strip() == "public_url=https://hub.example.org"
        time.sleep(2.5)
        assert not marker.exists()  # the app is not healthy yet: no connector
        status["code"] = 200
        assert wait_for(marker.exists, timeout=10)
    finally:
        app.shutdown()
