"""`model="auto"`: each request is classified — coding, reasoning, function calling or general — and
the best online model for that category answers.

Classification: a request that offers tools is function calling; otherwise a chat model picks the
category under a JSON schema — the best-ranked ready one of at least CLASSIFIER_MIN_GB (or a remote
one) — and keywords decide when there is none or it fails. Choice: the ready chat models, those good
at the category first, each group by catalog rank — so when the best is down the next best answers.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from engines.contract import Engine, GenerationRequest, collect
from engines.errors import EngineError, Unavailable
from engines.pool import Pool
from engines.registry import ModelRegistry

AUTO = "auto"  # the model name that asks for routing
CATEGORIES = ("coding", "reasoning", "function_calling", "general")
CLASSIFY_SECONDS = 10.0
CLASSIFIER_MIN_GB = 1.0  # a chat model this big (about 1.5B parameters at 4 bits) or a remote one classifies
_SCHEMA = {"type": "object", "properties": {"category": {"enum": list(CATEGORIES)}}, "required": ["category"],
           "additionalProperties": False}
_PROMPT = """Classify the user's request into exactly one category:
- coding: writing, fixing, explaining or reviewing code, programs, SQL, regular expressions
- reasoning: math, arithmetic, logic puzzles, step-by-step problem solving
- function_calling: doing something in the world with a tool or API: booking, sending, looking up live data
- general: anything else (facts, advice, writing, chat)

Request: {text}"""
_KEYWORDS = {
    "coding": r"\b(code|function|python|javascript|typescript|java|rust|golang|c\+\+|sql|regex|bug|debug|compile|"
              r"script|class|api endpoint|html|css|json|refactor|stack trace|exception|unit test|algorithm)\b",
    "function_calling": r"\b(book|reserve|schedule|send|email|text message|call|order|weather|forecast|stock price|"
                        r"turn on|turn off|set an? (alarm|timer|reminder)|look ?up|search for|convert .* currency|"
                        r"remind me|add to (my )?calendar)\b",
    "reasoning": r"(\d+\s*[-+*/x×^]\s*\d+|\b(solve|prove|calculate|compute|how many|how much|percent|probability|"
                 r"equation|puzzle|logic|riddle|if .* then|sum of|average|divided|multiplied|integral|derivative)\b)",
}


@dataclass(frozen=True)
class Route:
    model: str
    category: str
    method: str  # tools | model | keywords
    classify_ms: float


def keyword_category(text: str) -> str:
    lowered = text.lower()
    for category in ("coding", "function_calling", "reasoning"):
        if re.search(_KEYWORDS[category], lowered):
            return category
    return "general"


class Router:
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def ranked(self, category: str) -> list[str]:
        """The ready chat models for `category`: those good at it first, each group by catalog rank."""
        ready = [p for p in self.registry.entries() if p.spec.chat and p.state == "ready"]
        ready.sort(key=lambda p: (category not in p.spec.good_at, p.spec.rank))
        return [p.model_id for p in ready]

    def classifier(self) -> Pool | None:
        """The model that classifies: the best-ranked ready chat model big enough to do it well, if any.
        Measured on benchmarks/data/routing.jsonl: the embedded 135M model got 13% right (below chance),
        keywords 80%, so small models are not asked."""
        able = [p for p in self.registry.entries() if p.spec.chat and p.state == "ready"
                and (p.spec.size_gb >= CLASSIFIER_MIN_GB or p.spec.category == "remote")]
        return min(able, key=lambda p: p.spec.rank, default=None)

    async def ask(self, classifier: Engine, text: str) -> str | None:
        """The category `classifier` picks under the schema; None when it fails or answers otherwise."""
        request = GenerationRequest(messages=[{"role": "user", "content": _PROMPT.format(text=text[:1000])}],
                                    max_tokens=24, temperature=0.0, json_schema=_SCHEMA, resume=False)
        try:
            async with asyncio.timeout(CLASSIFY_SECONDS):
                done = await collect(classifier.stream(request))
        except (EngineError, TimeoutError):
            return None
        category = re.search(r'"category"\s*:\s*"(\w+)"', done.text)
        return category.group(1) if category and category.group(1) in CATEGORIES else None

    async def classify(self, text: str) -> tuple[str, str]:
        """(category, method): by the classifier model when there is one and it answers, else keywords."""
        classifier = self.classifier()
        if classifier is not None and (category := await self.ask(classifier, text)) is not None:
            return category, "model"
        return keyword_category(text), "keywords"

    async def route(self, request: GenerationRequest) -> Route:
        started = time.perf_counter()
        if request.tools and request.tool_choice != "none":
            category, method = "function_calling", "tools"
        else:
            category, method = await self.classify(_question(request))
        ranked = self.ranked(category)
        if not ranked:
            raise Unavailable("No chat model is ready to answer model=auto; retry in a few seconds.")
        return Route(ranked[0], category, method, round((time.perf_counter() - started) * 1000, 1))


def _question(request: GenerationRequest) -> str:
    if request.messages is None:
        return request.prompt if isinstance(request.prompt, str) else ""
    users = [m.get("content") for m in request.messages if m["role"] == "user"]
    last = users[-1] if users else ""
    return last if isinstance(last, str) else " ".join(p.get("text", "") for p in last if isinstance(p, dict))
