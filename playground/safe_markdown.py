"""Model text as Markdown that is safe to put in the page (`gr.HTML` inserts markup as it is, in the
app's origin, so what a model writes must never become live HTML there).

markdown-it-py with raw HTML off escapes every tag a model writes as text; the only attacker-chosen
values left in the output are link targets, and those are limited to http(s) and mailto. Images are
off: a model's image would make the reader's browser fetch any URL it names."""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

SAFE_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)  # checked on the decoded target, not trimmed
LINK_REL = "noopener noreferrer nofollow"


def _safe_link(url: str) -> bool:
    return SAFE_LINK.match(url) is not None


def _link_open(renderer, tokens, idx, options, env) -> str:
    tokens[idx].attrSet("rel", LINK_REL)
    tokens[idx].attrSet("target", "_blank")  # never replace the playground itself
    return renderer.renderToken(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = _safe_link  # an unsafe target leaves the link as plain text
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


@lru_cache(maxsize=128)  # finished turns are redrawn with every refresh of the cards
def to_html(text: str) -> str:
    """`text` rendered as Markdown: code blocks, lists, emphasis, tables, links; no HTML of its own."""
    return _MD.render(text)
