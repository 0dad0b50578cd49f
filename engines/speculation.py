"""Speculative decoding: guess the next few tokens cheaply, let the model check them in one pass.

The batch (engines/batch.py) puts a sequence's next token and a draft of the tokens expected after it
into the same decode step; the logits row of each drafted token says what the model would have chosen
there. The sequence samples row after row with its own sampler, keeping drafted tokens while they are
what it samples and stopping at the first that is not (that sample becomes the next token); the KV
cache of the rest is dropped. A draft only proposes (a point mass), so keeping a drafted token exactly
when the sampler picks it leaves the output distribution unchanged at any temperature, and with a seed
the same random draws happen in the same order: the text is the text of plain decoding.

On this machine's 2 cores a one-token pass of SmolLM2-135M takes ~11 ms, a pass of two ~20 ms and each
further token ~5 ms: a short draft pays only when nearly always kept, a long one on text the answer
copies pays well. `DraftLength` sets the pass's draft length from what its sequences have been
accepting (`Acceptance`) and what a pass costs (`PassCost`, measured as it runs); when no draft pays it
drafts one token now and then, so chat, where drafts are rarely right, stays as fast as without
speculation.

Drafters: `NgramDrafter` (prompt lookup: copy what followed the latest earlier occurrence of the last
few tokens — grounded work, where the answer repeats the prompt) and `ModelDrafter` (a smaller model
with the same vocabulary, greedy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import llama_cpp
import numpy as np

from engines.llama import create_context

MAX_DRAFT = 64  # tokens drafted at most per step and sequence (--draft-max)
PROBE_EVERY = 16  # passes between one-token drafts while drafting does not pay
_DECAY = 0.8  # weight of the earlier drafts in the acceptance estimate (about the last five count)


@dataclass
class Acceptance:
    """How often one sequence's drafted tokens have been kept lately (`alpha`). Each drafted token is
    taken to be kept with probability alpha until the first refusal, so a draft of k tokens yields
    (1 - alpha^(k+1)) / (1 - alpha) tokens in its pass."""

    kept: float = 4.0  # decayed counts: drafted tokens kept, and drafts refused before their end; the
    refused: float = 1.0  # prior (alpha 0.8) lets a new answer try a 3-token draft at its first match
    drafted: int = 0  # totals, for timings
    accepted: int = 0

    @property
    def alpha(self) -> float:
        return self.kept / (self.kept + self.refused)

    def expected(self, k: int) -> float:
        alpha = min(self.alpha, 0.999)
        return (1 - alpha ** (k + 1)) / (1 - alpha)

    def record(self, drafted: int, accepted: int) -> None:
        if not drafted:
            return
        self.drafted += drafted
        self.accepted += accepted
        self.kept = self.kept * _DECAY + accepted
        self.refused = self.refused * _DECAY + (accepted < drafted)


class DraftLength:
    """How long the drafts of a pass are: the choice with the most expected tokens per second of pass
    time (`PassCost`), where llama.cpp reads a pass over several KV streams in ubatches that each take
    the same number of tokens from a run of consecutive sequence ids (`ubatches`): drafts of different
    lengths cost whole extra graph passes. With 8 streams, drafts chosen sequence by sequence made the
    batch 25% slower than no drafts.

    The drafter is asked for the longest draft that would pay for any one sequence, were it the only
    draft in the pass; then one length k goes to the sequences whose draft reaches it (or only to those
    of them likely enough to keep it), none to the others. While no draft pays, every sequence drafts
    one token every PROBE_EVERY passes (or at the first pass after that where every one has a draft),
    which keeps the acceptance estimates current."""

    def __init__(self, maximum: int = MAX_DRAFT):
        self.maximum = maximum
        self.idle = 0

    def drafts(self, seq_ids: list[int], sequences: list[Acceptance], cost: PassCost, caps: list[int],
               propose: Callable[[int], list[list[int]]]) -> list[list[int]]:
        """The drafts for the sequences `seq_ids` (ascending) of a pass, one list each (empty: none);
        `propose(count)` drafts up to `count` tokens for each; `caps` bound each one's length (its
        answer's budget, its context, the batch's room)."""
        caps = [min(cap, self.maximum) for cap in caps]
        probe = self.idle + 1 >= PROBE_EVERY
        paying = [self._longest_paying(sequence, cost, len(seq_ids), cap)
                  for sequence, cap in zip(sequences, caps, strict=True)]
        count = max(*paying, min(max(caps), 1) if probe else 0)
        drafts: list[list[int]] = [[] for _ in seq_ids]
        if count > 0:
            drafts = [draft[:cap] for draft, cap in zip(propose(count), caps, strict=True)]
            lengths = self._choose(seq_ids, sequences, [len(draft) for draft in drafts], cost)
            if not any(lengths) and probe and all(drafts):  # a probe that would not split the pass
                lengths = [1] * len(drafts)
            drafts = [draft[:n] for draft, n in zip(drafts, lengths, strict=True)]
        self.idle = 0 if any(drafts) else self.idle + 1
        return drafts

    @staticmethod
    def _longest_paying(sequence: Acceptance, cost: PassCost, streams: int, cap: int) -> int:
        """The draft length that pays most for this sequence, were every sequence of the pass drafting
        as it does (one ubatch, its share of the pass's time)."""
        best, best_rate = 0, streams / cost.seconds(1, streams)
        for k in range(1, cap + 1):
            rate = streams * sequence.expected(k) / cost.seconds(1, streams * (1 + k))
            if rate > best_rate:
                best, best_rate = k, rate
        return best

    @staticmethod
    def _choose(seq_ids: list[int], sequences: list[Acceptance], drafted: list[int], cost: PassCost) -> list[int]:
        def rate(lengths: list[int]) -> float:
            tokens = sum(s.expected(n) for s, n in zip(sequences, lengths, strict=True))
            return tokens / cost.seconds(ubatches(seq_ids, [1 + n for n in lengths]), len(lengths) + sum(lengths))

        best = [0] * len(drafted)
        plain = best_rate = rate(best)
        if len(drafted) == 1:  # one stream: its draft was cut to the length that pays
            return drafted if drafted[0] and rate(drafted) > plain else best
        for k in range(1, max(drafted, default=0) + 1):
            reaching = [k if n >= k else 0 for n in drafted]
            # ... or only those whose own expected gain beats what plain decoding makes of the time
            paying = [n if (s.expected(n) - 1) > plain * cost.per_token * n else 0
                      for s, n in zip(sequences, reaching, strict=True)]
            for lengths in (reaching, paying):
                if rate(lengths) > best_rate:
                    best, best_rate = lengths, rate(lengths)
        return best


def ubatches(seq_ids: list[int], tokens: list[int]) -> int:
    """How many ubatches llama.cpp splits a pass into when sequences `seq_ids` (ascending, one KV stream
    each) put `tokens` tokens in it: each ubatch takes the smallest remaining count from every sequence
    of the first run of consecutive ids that still has tokens (src/llama-batch.cpp, split_equal)."""
    left = dict(zip(seq_ids, tokens, strict=True))
    count = 0
    while left:
        run: list[int] = []
        for seq_id in sorted(left):
            if run and seq_id != run[-1] + 1:
                break
            run.append(seq_id)
        take = min(left[seq_id] for seq_id in run)
        for seq_id in run:
            left[seq_id] -= take
            if not left[seq_id]:
                del left[seq_id]
        count += 1
    return count


class PassCost:
    """What a decode pass costs, in units of a one-token pass: `one` for a pass of one token (llama.cpp's
    matrix-vector path), fixed x ubatches + per_token x tokens for more (matrix-matrix path).

    Draft lengths depend only on these proportions (every choice compares tokens per second of two
    passes), so they are set, not timed: measured on SmolLM2-135M, 2 cores, position ~700 (1 token
    10.9 ms, 2 tokens 20 ms, 17 tokens 97 ms, 65 tokens 283 ms: the first drafted token costs most of a
    pass, later ones half). Bigger models read their weights once for all tokens of a pass, so there a
    draft costs relatively less: these proportions err on the side of drafting too little.
    Three timed variants were tried and dropped. Timed at load, the passes raced the rest of start-up
    (a one-token pass read 843 ms). Refitted to every pass as it came, 2-3-token drafts looked cheap and
    long ones dear; refitted to multi-token passes only, a few outliers tilted the line (fixed part 33 ms
    instead of 10) and once drafting stopped no passes came to right it."""

    def __init__(self, one: float = 1.0, fixed: float = 0.9, per_token: float = 0.47):
        self.one, self.fixed, self.per_token = one, fixed, per_token

    def seconds(self, ubatches: int, tokens: int) -> float:
        return self.one if tokens == 1 else self.fixed * ubatches + self.per_token * tokens


@dataclass
class Want:
    """One sequence asking for a draft: its KV-cache sequence, every token so far (prompt, answer, and
    the next token, sampled but not decoded yet) and how many tokens at most."""

    seq_id: int
    history: list[int]
    count: int


class Drafter(Protocol):
    name: str

    def begin(self, seq_id: int) -> None:
        """A new request takes sequence `seq_id`."""

    def propose(self, wants: list[Want]) -> list[list[int]]:
        """A draft (possibly empty) for each want, in order."""

    def close(self) -> None: ...


class NgramDrafter:
    """Prompt-lookup drafting: find the latest earlier place where the last `n` tokens occurred (the
    one whose match reaches furthest back among the last few), and propose what followed it. Repeats
    that overlap themselves ("ha ha ha") continue through the draft."""

    name = "ngram"

    def __init__(self, n: int = 3, min_match: int = 3, candidates: int = 4):
        self.n, self.min_match, self.candidates = n, min_match, candidates
        self._indexes: dict[int, _NgramIndex] = {}

    def begin(self, seq_id: int) -> None:
        self._indexes[seq_id] = _NgramIndex(self.n, self.candidates)

    def propose(self, wants: list[Want]) -> list[list[int]]:
        return [self._propose(want) for want in wants]

    def _propose(self, want: Want) -> list[int]:
        history = want.history
        index = self._indexes.setdefault(want.seq_id, _NgramIndex(self.n, self.candidates))
        index.extend(history)
        best, best_match = -1, 0
        for end in index.ends(tuple(history[-self.n:])):
            match = _match_length(history, end)
            if match > best_match:
                best, best_match = end, match
        if best < 0 or best_match < self.min_match:
            return []
        draft: list[int] = []
        for i in range(want.count):  # the source may run into the draft itself: periodic text
            source = best + i
            draft.append(history[source] if source < len(history) else draft[source - len(history)])
        return draft

    def close(self) -> None:
        self._indexes.clear()


class _NgramIndex:
    """n-gram -> the positions right after its latest few occurrences, filled as the history grows.
    The last n-gram of the history is left out: it is the one being looked up."""

    def __init__(self, n: int, candidates: int):
        self.n, self.candidates = n, candidates
        self._ends: dict[tuple[int, ...], list[int]] = {}
        self._done = 0  # history[:_done + n - 1] is indexed: n-grams ending before position _done + n

    def extend(self, history: list[int]) -> None:
        n = self.n
        if self._done > max(len(history) - n, 0):  # the history was cut shorter (a new request)
            self._ends.clear()
            self._done = 0
        for start in range(self._done, len(history) - n):
            ends = self._ends.setdefault(tuple(history[start:start + n]), [])
            ends.append(start + n)
            if len(ends) > self.candidates:
                del ends[0]
        self._done = max(self._done, len(history) - n)

    def ends(self, gram: tuple[int, ...]) -> list[int]:
        return self._ends.get(gram, [])


def _match_length(history: list[int], end: int, limit: int = 32) -> int:
    """How many tokens before `end` equal the tokens at the end of the history."""
    n = 0
    last = len(history)
    while n < limit and n < end and history[end - 1 - n] == history[last - 1 - n]:
        n += 1
    return n


class ModelDrafter:
    """A smaller model with the same vocabulary drafts greedily, in its own llama.cpp context (one KV
    sequence per slot, kept in step with the target's tokens: each step it reads what it has not seen,
    drops what the target rejected, then drafts one token per pass for every sequence at once). A
    sequence stops drafting when the draft model's own confidence falls under `p_min`."""

    name = "draft-model"

    def __init__(self, model, *, n_seq: int, n_ctx: int, n_batch: int, n_threads: int, flash_attn: bool,
                 label: str, p_min: float = 0.5):
        self.model, self.label, self.p_min = model, label, p_min
        self.ctx = create_context(model.model, n_seq=n_seq, n_ctx=n_ctx, n_batch=max(n_batch, n_seq),
                                  n_threads=n_threads, flash_attn=flash_attn, label=f"draft model {label}")
        self._memory = llama_cpp.llama_get_memory(self.ctx)
        self._capacity = max(n_batch, n_seq)
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        self._n_vocab = model.n_vocab()
        self._cached: dict[int, list[int]] = {}

    def begin(self, seq_id: int) -> None:
        self._cached.setdefault(seq_id, [])

    def propose(self, wants: list[Want]) -> list[list[int]]:
        wants = [want for want in wants if want.count > 0]
        drafts: dict[int, list[int]] = {want.seq_id: [] for want in wants}
        rows = self._catch_up(wants)
        active = {want.seq_id: want for want in wants if want.seq_id in rows}
        while active:
            for seq_id, row in list(rows.items()):
                if seq_id not in active:
                    continue
                token, p = self._best(row)
                if p < self.p_min:
                    del active[seq_id]
                    continue
                drafts[seq_id].append(token)
                if len(drafts[seq_id]) >= active[seq_id].count:
                    del active[seq_id]
            if not active:
                break
            rows = self._decode([(seq_id, drafts[seq_id][-1], True) for seq_id in active])
        return [drafts.get(want.seq_id, []) for want in wants] if wants else []

    def _catch_up(self, wants: list[Want]) -> dict[int, int]:
        """Brings each sequence's draft cache to its history; returns the row of each last token."""
        todo: list[tuple[int, int, bool]] = []
        for want in wants:
            cached = self._cached.setdefault(want.seq_id, [])
            keep = min(common_prefix(cached, want.history), len(want.history) - 1)
            llama_cpp.llama_memory_seq_rm(self._memory, want.seq_id, keep, -1)
            del cached[keep:]
            rest = want.history[keep:]
            todo.extend((want.seq_id, token, i == len(rest) - 1) for i, token in enumerate(rest))
        rows: dict[int, int] = {}
        for start in range(0, len(todo), self._capacity):
            rows.update(self._decode(todo[start:start + self._capacity]))
        return rows

    def _decode(self, entries: list[tuple[int, int, bool]]) -> dict[int, int]:
        batch, rows = self._batch, {}
        for n, (seq_id, token, logits) in enumerate(entries):
            cached = self._cached[seq_id]
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, len(cached), 1
            batch.seq_id[n][0], batch.logits[n] = seq_id, logits
            cached.append(token)
            if logits:
                rows[seq_id] = n
        batch.n_tokens = len(entries)
        if llama_cpp.llama_decode(self.ctx, batch) != 0:
            for seq_id in rows:  # its cache is unknown now: start over next time
                llama_cpp.llama_memory_seq_rm(self._memory, seq_id, -1, -1)
                self._cached[seq_id] = []
            return {}
        return rows

    def _best(self, row: int) -> tuple[int, float]:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, row), shape=(self._n_vocab,))
        token = int(logits.argmax())
        p = 1.0 / float(np.exp(logits - logits[token]).sum())
        return token, p

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None


def check_vocabulary(target, draft, target_label: str, draft_label: str) -> None:
    """Refuses a draft model whose tokens are not the target's: its drafts would be other words."""
    problems = []
    if target.n_vocab() != draft.n_vocab():
        problems.append(f"{draft.n_vocab()} tokens vs {target.n_vocab()}")
    elif llama_cpp.llama_vocab_type(target.vocab) != llama_cpp.llama_vocab_type(draft.vocab):
        problems.append("another tokenizer type")
    else:
        for token in range(target.n_vocab()):
            if target.token_get_text(token) != draft.token_get_text(token):
                problems.append(f"token {token} is {draft.token_get_text(token)!r} vs "
                                f"{target.token_get_text(token)!r}")
                break
    if problems:
        raise ValueError(f"The draft model '{draft_label}' cannot draft for '{target_label}': its vocabulary "
                         f"differs ({problems[0]}).")


def can_roll_back(model) -> bool:
    """Whether a rejected draft's KV cache can be dropped: not in recurrent or hybrid models (their state
    is not per position) nor sliding-window ones (cells past the window are reused)."""
    return not (llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model)
                or llama_cpp.llama_model_n_swa(model) > 0)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
