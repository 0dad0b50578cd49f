"""Speculative decoding with the real embedded model: the text is the text of plain decoding.

Engines run with flash attention (the default), under which a sequence's arithmetic does not depend
on how many tokens share its decode pass — the property that lets drafted tokens be checked in one pass
and still give plain decoding's greedy text (tests/engines/test_batch.py says the same of batching).
The engines read up to 512 tokens per pass, so four prompts together are read whole in one pass as each
is alone: a prompt read in other pieces can differ in the last digits, with or without speculation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading

import jsonschema
import pytest

from engines.catalog import find
from engines.contract import Completion, GenerationRequest, collect
from engines.local import LocalEngine
from engines.model_files import resolve_path
from engines.speculation import PROBE_EVERY, Acceptance, DraftLength, NgramDrafter, PassCost, Want, ubatches
from settings import parse_args
from tests.support.servers import ROOT

PASSAGE = (
    "The lighthouse stood on a rock at the mouth of the bay. Every evening the keeper climbed the ninety "
    "steps of the tower, trimmed the wick, wound the clockwork that turned the lens, and wrote the weather "
    "in a leather book: the wind, the sea, the ships that passed. In winter the storms came from the west "
    "and the spray reached the lantern room; in summer the fog came in the mornings and the horn sounded "
    "every thirty seconds until noon."
)
GROUNDED = [
    f"Copy the following text exactly, word for word:\n\n{PASSAGE}",
    f"Put this text, copied exactly, in the JSON field text:\n\n{PASSAGE}",
    "Write a long story about a robot who learns to paint.",
    "List the numbers from 1 to 40, separated by commas.",
]


def start(**options) -> LocalEngine:
    spec = dataclasses.replace(find("smollm2-135m-instruct"), max_concurrent=4, n_threads=2, n_batch=512)
    return LocalEngine(spec, resolve_path(spec), max_queue=8, queue_timeout=60, **options)


# Fresh engines per test: what earlier tests left in the slots' caches (which slot got which prompt
# when several ran at once) would change how each prompt is read.
@pytest.fixture
def speculating():
    engine = start()
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture
def plain():
    engine = start(speculative="off")
    yield engine
    asyncio.run(engine.aclose())


def request(prompt: str, **options) -> GenerationRequest:
    options.setdefault("max_tokens", 120)
    options.setdefault("temperature", 0)
    return GenerationRequest(messages=[{"role": "user", "content": prompt}], **options)


async def answer(engine: LocalEngine, prompt: str, **options) -> Completion:
    return await collect(engine.stream(request(prompt, **options)))


def answers(engine: LocalEngine, prompts: list[str], **options) -> list[Completion]:
    return [asyncio.run(answer(engine, prompt, **options)) for prompt in prompts]


# -- the drafter and the draft length, without a model --

def test_ngram_drafter_copies_what_followed_the_longest_recent_match():
    drafter = NgramDrafter(n=3, min_match=3)
    drafter.begin(0)
    history = [1, 2, 3, 4, 5, 6, 7, 9, 2, 3, 4, 8, 7, 1, 2, 3, 4]
    # [2, 3, 4] occurs twice before the end; the first occurrence matches one more token back (1)
    assert drafter.propose([Want(0, history, 3)]) == [[5, 6, 7]]
    assert drafter.propose([Want(0, [5, 6, 7, 8], 3)]) == [[]]  # a new, shorter history: no match, no draft
    drafter.begin(1)
    periodic = [10, 11, 12, 10, 11, 12, 10, 11]
    assert drafter.propose([Want(1, periodic, 5)]) == [[12, 10, 11, 12, 10]]  # runs on through its own draft
    assert drafter.propose([Want(1, [1, 2, 9, 1, 2], 4)]) == [[]]  # two tokens of match are not enough


def linear(ratio: float) -> PassCost:
    """A pass that costs 1 + ratio x tokens (the first token too)."""
    return PassCost(one=1 + ratio, fixed=1.0, per_token=ratio)


THIS_MACHINE = PassCost()  # SmolLM2-135M, 2 cores: 1 token 10.9 ms, 2 tokens 20 ms, then ~5.1 ms a token


def lengths(length: DraftLength, sequences: list[Acceptance], cost: PassCost | float, found: list[int] | None = None,
            cap: int = 16) -> list[int]:
    """The draft lengths a pass of these sequences gets, the drafter finding `found` tokens for each
    (default: as many as asked)."""
    cost = linear(cost) if isinstance(cost, float) else cost
    found = found or [99] * len(sequences)
    drafts = length.drafts(list(range(len(sequences))), sequences, cost, [cap] * len(sequences),
                           lambda count: [[7] * min(count, n) for n in found])
    return [len(draft) for draft in drafts]


def test_draft_length_follows_acceptance_and_the_cost_of_a_pass():
    length, acceptance = DraftLength(maximum=16), Acceptance()
    assert 1 <= lengths(length, [acceptance], 1.0)[0] <= 3  # a cautious start
    for _ in range(6):
        [k] = lengths(length, [acceptance], 1.0)
        acceptance.record(k, k)  # whole drafts kept: longer ones
    assert lengths(length, [acceptance], 1.0)[0] >= 8
    assert lengths(DraftLength(maximum=16), [acceptance], 0.05) == [16]  # cheap tokens: the maximum
    assert lengths(length, [acceptance], 0.05, cap=3) == [3]  # the answer's budget, context or batch room
    assert lengths(length, [acceptance], 0.05, found=[2]) == [2]  # what the drafter found
    for _ in range(8):
        acceptance.record(4, 0)  # refused at once, again and again
    assert lengths(length, [acceptance], 1.0) == [0]
    waits = [lengths(length, [acceptance], 1.0) for _ in range(PROBE_EVERY - 2)]
    assert waits == [[0]] * (PROBE_EVERY - 2) and lengths(length, [acceptance], 1.0) == [1]  # a probe now and then
    assert acceptance.drafted == acceptance.accepted + 8 * 4


def test_a_costly_first_drafted_token_asks_for_long_drafts_or_none():
    """The second token of a pass costs most of a pass on this machine. A straight line through its
    one-token and 17-token passes (10.9 and 97 ms: fixed 5.5 ms + 5.4 ms a token, `linear(1.0)`) makes a
    one-token draft look cheap and long ones dear: a stream keeping 70% of its drafted tokens is better
    off without drafts, and one keeping nearly all drafts longer."""
    mostly = Acceptance(kept=7, refused=3)
    assert lengths(DraftLength(), [mostly], THIS_MACHINE, cap=64) == [0]
    assert lengths(DraftLength(), [mostly], linear(1.0), cap=64) == [1]
    copying = Acceptance(kept=200, refused=1)
    assert lengths(DraftLength(), [copying], THIS_MACHINE, cap=64)[0] >= 24
    assert lengths(DraftLength(), [copying], linear(1.0), cap=64)[0] < 24


def test_ubatches_follow_llama_cpps_equal_split():
    assert ubatches([0, 1, 2, 3], [1, 1, 1, 1]) == 1
    assert ubatches([0, 1, 2, 3], [5, 5, 5, 5]) == 1  # equal drafts: one graph pass
    assert ubatches([0, 1, 2, 3], [1, 5, 5, 1]) == 2  # the rest of 1 and 2 in a second one
    assert ubatches([0, 1, 2, 3], [5, 1, 5, 1]) == 3  # 0 and 2 are not consecutive
    assert ubatches([0, 1, 2, 3], [1, 3, 5, 1]) == 3
    assert ubatches([0, 2, 3], [1, 1, 1]) == 2  # an idle slot between ids splits even plain passes


def test_drafts_of_a_pass_share_one_length():
    """Sequences sharing a pass draft one length (llama.cpp splits a pass of unequal ones), or none: the
    length weighs every sequence's acceptance and the extra graph pass a sequence without a draft costs;
    a pass's fixed cost shared by more sequences leaves less to save."""
    keeps, good, refuses = Acceptance(kept=40, refused=1), Acceptance(kept=8, refused=1), Acceptance(kept=1, refused=4)
    assert lengths(DraftLength(), [keeps], 0.5)[0] >= 8
    assert lengths(DraftLength(), [good] * 8, 1.0) == [0] * 8  # 89% kept: not enough for 8 streams
    assert lengths(DraftLength(), [good], 1.0)[0] > 0  # enough for one
    assert lengths(DraftLength(), [keeps] * 4, 0.1, found=[9, 6, 12, 7]) == [6, 6, 6, 6]
    # One sequence without a draft: the others draft when that pays for the extra ubatch.
    assert lengths(DraftLength(), [keeps] * 4, 0.1, found=[0, 9, 9, 9]) == [0, 9, 9, 9]
    assert lengths(DraftLength(), [good] * 4, 1.0, found=[0, 9, 9, 9]) == [0, 0, 0, 0]
    assert lengths(DraftLength(), [good] * 4, 1.0, found=[9, 9, 9, 9]) == [1, 1, 1, 1]
    assert lengths(DraftLength(), [keeps, refuses], 0.5, found=[8, 8]) == [8, 0]  # unlikely kept: left out
    assert lengths(DraftLength(), [keeps, refuses], 0.1, found=[8, 8]) == [8, 8]  # cheaper than one more ubatch


def test_a_split_pass_pays_the_fixed_part_per_ubatch():
    cost = PassCost()  # in units of a one-token pass, as measured on SmolLM2-135M
    assert cost.seconds(1, 1) == 1.0 and cost.seconds(1, 2) == pytest.approx(0.9 + 2 * 0.47)
    assert cost.seconds(3, 30) == pytest.approx(3 * 0.9 + 30 * 0.47)


# -- the real model --

# A pass cost as on a memory-bound model (one more token costs a tenth of a pass), so the batch of four
# drafts (with this machine's proportions drafting in a batch of four rarely pays, and this test is about
# exactness, not about when drafts pay).
CHEAP_TOKENS = PassCost(one=1.1, fixed=1.0, per_token=0.1)


def alone_then_together(engine: LocalEngine) -> tuple[list[Completion], list[int], list[Completion]]:
    """Each grounded prompt alone (and the decode passes each took), then all four at once with cheap
    tokens. Both engines see the same requests in the same order, so their slots' cached prefixes are
    the same too."""
    alone, passes = [], []
    for prompt in GROUNDED:
        before = engine.batch.steps
        alone.append(asyncio.run(answer(engine, prompt)))
        passes.append(engine.batch.steps - before)
    engine.batch.pass_cost = CHEAP_TOKENS
    return alone, passes, together(engine, GROUNDED)


def together(engine: LocalEngine, prompts: list[str]) -> list[Completion]:
    """The prompts join the batch in the same step: the decode thread waits until all are queued (which
    pass reads which prompt would otherwise depend on thread timing, on either engine)."""
    queued = threading.Event()
    holding = threading.Thread(target=engine.batch._thread.call, args=(queued.wait,))  # noqa: SLF001
    holding.start()

    async def main():
        tasks = [asyncio.create_task(answer(engine, prompt)) for prompt in prompts]
        while len(engine.batch._arrivals) < len(prompts):  # noqa: SLF001
            await asyncio.sleep(0.005)
        queued.set()
        return await asyncio.gather(*tasks)

    try:
        return asyncio.run(main())
    finally:
        queued.set()
        holding.join()


@pytest.mark.slow  # dozens of answers
def test_greedy_text_is_the_same_with_and_without_speculation(speculating, plain):
    expected, plain_passes, expected_together = alone_then_together(plain)
    got, passes, together = alone_then_together(speculating)
    for alone, speculated in zip(expected + expected_together, got + together, strict=True):
        assert speculated.text == alone.text
        assert speculated.usage.completion_tokens == alone.usage.completion_tokens
        assert speculated.finish_reason == alone.finish_reason
        assert alone.timings.draft_tokens == 0
    drafted = sum(c.timings.draft_tokens for c in got)
    accepted = sum(c.timings.draft_accepted for c in got)
    assert accepted > 50 and accepted > drafted / 2  # drafts really were made and kept
    assert passes[0] < plain_passes[0] * 0.7  # the copy took far fewer decode passes
    assert sum(c.timings.draft_accepted for c in together) > 20  # drafts inside the batch of four too


@pytest.mark.slow  # dozens of answers
def test_a_seeded_sample_is_the_same_with_and_without_speculation(speculating, plain):
    options = dict(temperature=0.8, seed=7, max_tokens=100)
    for prompt in GROUNDED[:3]:
        alone, speculated = asyncio.run(answer(plain, prompt, **options)), asyncio.run(
            answer(speculating, prompt, **options))
        assert speculated.text == alone.text


@pytest.mark.slow  # dozens of answers
def test_stops_grammars_and_logprobs_under_speculation(speculating, plain):
    copied = asyncio.run(answer(plain, GROUNDED[0])).text
    stop = "ninety"
    assert stop in copied
    stopped = asyncio.run(answer(speculating, GROUNDED[0], stop=(stop,)))
    assert stopped.finish_reason == "stop" and stopped.text == copied[: copied.index(stop)]
    assert stopped.timings.draft_accepted > 0  # the stop string was reached inside accepted drafts

    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    prompt = f"Put this text, copied exactly, in the JSON field text:\n\n{PASSAGE}"
    shaped = asyncio.run(answer(speculating, prompt, json_schema=schema, max_tokens=120))
    assert shaped.text == asyncio.run(answer(plain, prompt, json_schema=schema, max_tokens=120)).text
    if shaped.finish_reason == "stop":
        jsonschema.validate(json.loads(shaped.text), schema)
    assert shaped.timings.draft_accepted > 0

    with_logprobs = asyncio.run(answer(speculating, GROUNDED[0], logprobs=2, max_tokens=60))
    reference = asyncio.run(answer(plain, GROUNDED[0], logprobs=2, max_tokens=60))
    assert [lp.token for lp in with_logprobs.logprobs] == [lp.token for lp in reference.logprobs]
    for ours, theirs in zip(with_logprobs.logprobs, reference.logprobs, strict=True):
        assert ours.logprob == pytest.approx(theirs.logprob, abs=1e-4)
        assert [a.token for a in ours.top] == [a.token for a in theirs.top]


@pytest.mark.slow  # dozens of answers
def test_cancelled_mid_draft_the_slot_and_its_cache_stay_right(speculating, plain):
    expected = asyncio.run(answer(plain, GROUNDED[3], max_tokens=200)).text

    async def cancel_while_drafting():
        stream = speculating.stream(request(GROUNDED[3], max_tokens=200))
        received = 0
        async for chunk in stream:
            received += len(chunk.tokens)
            if received >= 20:  # the list is being copied from itself: every step carries a draft
                break
        await stream.aclose()
        while speculating.slots.active:
            await asyncio.sleep(0.005)
        return await answer(speculating, GROUNDED[3], max_tokens=200)  # same prompt: the cached slot

    again = asyncio.run(cancel_while_drafting())
    assert speculating.slots.active == 0
    assert again.usage.cached_tokens > 0
    assert again.text == expected


@pytest.mark.slow  # dozens of answers
def test_a_model_drafting_for_itself_gives_the_same_text_and_mostly_agrees(plain):
    spec = find("smollm2-135m-instruct")
    engine = start(draft=(spec.id, resolve_path(spec)))
    try:
        assert engine.details()["speculation"] == f"draft-model {spec.id}"
        prompts = [GROUNDED[0], "Name three colours."]
        got = answers(engine, prompts, max_tokens=60)
        for alone, speculated in zip(answers(plain, prompts, max_tokens=60), got, strict=True):
            assert speculated.text == alone.text
        drafted = sum(c.timings.draft_tokens for c in got)
        assert sum(c.timings.draft_accepted for c in got) >= 0.9 * drafted > 0
    finally:
        asyncio.run(engine.aclose())


def test_a_draft_model_with_another_vocabulary_is_refused():
    other = find("gemma3-270m")
    with pytest.raises(ValueError, match="vocabulary differs"):
        start(draft=(other.id, resolve_path(other)))


def test_sliding_window_models_decode_without_speculation():
    spec = dataclasses.replace(find("gemma3-270m"), max_concurrent=1, n_threads=2)
    engine = LocalEngine(spec, resolve_path(spec), max_queue=2, queue_timeout=60)
    try:
        assert engine.details()["speculation"].startswith("off")
        done = asyncio.run(collect(engine.stream(GenerationRequest(prompt="One, two, three, four,", max_tokens=8,
                                                                   temperature=0))))
        assert done.usage.completion_tokens > 0 and done.timings.draft_tokens == 0
    finally:
        asyncio.run(engine.aclose())


@pytest.mark.parametrize("cache_type, share", [("q8_0", 34 / 64), ("q4_0", 18 / 64)])
def test_a_quantized_kv_cache_takes_less_memory_and_still_answers(plain, cache_type, share):
    engine = start(cache_type=cache_type)
    try:
        full = plain.details()["kv_cache_mb_per_slot"]
        assert engine.details()["cache_type"] == cache_type
        assert engine.details()["kv_cache_mb_per_slot"] == pytest.approx(full * share, abs=0.1)
        copied = asyncio.run(answer(engine, GROUNDED[0], max_tokens=40))
        assert "lighthouse" in copied.text.lower()
    finally:
        asyncio.run(engine.aclose())


def test_speculation_settings_are_checked_at_start(capsys):
    for args, says in ((["--cache-type", "q8_0", "--flash-attn", "off"], "needs flash attention"),
                       (["--cache-type", "q5_1"], "'f16', 'q8_0' or 'q4_0'"),
                       (["--speculative", "eagle"], "'ngram' or 'off'"),
                       (["--draft-max", "0"], "greater than or equal to 1")):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(args)
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
    run = subprocess.run([sys.executable, "app.py", "--draft-model", "nope.gguf", "--no-ui"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "does not exist" in run.stderr
