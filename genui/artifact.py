"""HTML artifacts, shown only inside a sandboxed iframe.

The document goes into `srcdoc` (escaped, so it cannot break out into the page), the iframe gets
`sandbox="allow-scripts"` without `allow-same-origin` (an opaque origin: no access to the page, its
cookies or storage), and a Content-Security-Policy forbids every network request and form post.
Scripts run; the only way out is `playground.send(name, value)`, a postMessage the page accepts only
from its own artifact frames and only in a small, validated shape.
"""

from __future__ import annotations

import html

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
    """The CSP, then the bridge, then the document: first whatever the document holds (a `<header>`
    before its head, a commented-out `<head>`, no head at all), so the policy covers all of it. The
    parser puts them into the head it opens itself; the document's own doctype and head tags, coming
    later, are ignored as the HTML spec says, and its content stays in place."""
    return (f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta http-equiv="x-dns-prefetch-control" content="off">{BRIDGE}{document}')


def sandboxed_iframe(document: str, height: int = 420) -> str:
    """HTML for the page: the hardened document inside a sandboxed iframe."""
    return (f'<iframe class="playground-artifact" sandbox="allow-scripts" referrerpolicy="no-referrer" '
            f'style="width:100%;height:{height}px;border:1px solid #ccc;border-radius:8px" '
            f'srcdoc="{html.escape(harden(document), quote=True)}"></iframe>')
