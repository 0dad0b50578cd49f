"""HTML artifacts, shown only inside a sandboxed iframe.

The document goes into `srcdoc` (escaped, so it cannot break out into the page), the iframe gets
`sandbox="allow-scripts"` without `allow-same-origin` (an opaque origin: no access to the page, its
cookies or storage), and a Content-Security-Policy forbids every network request and form post.
Scripts run; the only way out is `playground.send(name, value)`, a postMessage the page accepts only
from its own artifact frames and only in a small, validated shape.
"""

from __future__ import annotations

import html
import re

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")

BRIDGE = """<script>window.playground = {send: function (name, value) {
  parent.postMessage({type: "playground-event", name: String(name).slice(0, 64),
                      value: String(value === undefined ? "" : value).slice(0, 500)}, "*");
}};</script>"""

# Installed once in the page: accepts bridge messages only from artifact frames, in one shape.
PAGE_LISTENER = """
<script>
window.addEventListener("message", (event) => {
  const frames = [...document.querySelectorAll("iframe.playground-artifact")];
  if (!frames.some(f => f.contentWindow === event.source)) return;
  const d = event.data;
  if (!d || d.type !== "playground-event" || typeof d.name !== "string" || typeof d.value !== "string") return;
  if (!/^[\\w .:-]{1,64}$/.test(d.name) || d.value.length > 500) return;
  const box = document.querySelector("#artifact-bridge textarea");
  if (!box) return;
  box.value = JSON.stringify({name: d.name, value: d.value, at: Date.now()});
  box.dispatchEvent(new Event("input", {bubbles: true}));
});
</script>
"""


def harden(document: str) -> str:
    """Adds the CSP and the bridge at the top of the document's head."""
    head = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">{BRIDGE}'
    match = re.search(r"<head[^>]*>", document, re.IGNORECASE)
    if match:
        return document[: match.end()] + head + document[match.end():]
    match = re.search(r"<html[^>]*>", document, re.IGNORECASE)
    if match:
        return document[: match.end()] + f"<head>{head}</head>" + document[match.end():]
    return f"<!doctype html><html><head>{head}</head><body>{document}</body></html>"


def sandboxed_iframe(document: str, height: int = 420) -> str:
    """HTML for the page: the hardened document inside a sandboxed iframe."""
    return (f'<iframe class="playground-artifact" sandbox="allow-scripts" referrerpolicy="no-referrer" '
            f'style="width:100%;height:{height}px;border:1px solid #ccc;border-radius:8px" '
            f'srcdoc="{html.escape(harden(document), quote=True)}"></iframe>')
