"""Continuous batching: every request to a model is decoded together in one llama.cpp context.

The context holds one sequence per slot, each with its own KV cache of `n_ctx` tokens, so the weights
and compute buffers exist once whatever the number of slots. One decode thread runs steps: a step puts
the next token of every generating sequence and a chunk of every new prompt into one `llama_batch`,
decodes it, and samples each sequence from its own row of logits (in C). Requests join and leave
between steps.

A finished sequence keeps its KV cache. A new request takes the free sequence whose cached tokens
share the longest prefix with its prompt and decodes only the rest, so a conversation's next turn
skips everything already read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from engines.contract import TokenLogprob
from engines.errors import Unavailable
from engines.generation import Pieces, Sequence, token_logprob
from engines.llama import create_context
from engines.speculation import Acceptance, Drafter, DraftLength, PassCost, Want, common_prefix

_FAILED_STEP_HINT = "the decode step failed (llama_decode returned {rc})"


@dataclass(eq=False)
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV is in this sequence's cache
    used_at: float = 0.0
    running: _Running | None = None


@dataclass(eq=False)
class _Running:
    sequence: Sequence
    slot: _Slot
    release: Callable[[], None]
    pending: list[int]  # prompt tokens not decoded yet
    position: int
    next_token: int | None = None  # sampled, to be decoded in the next step
    rows: list[int] = field(default_factory=list)  # batch entries this sequence samples from after a step
    draft: list[int] = field(default_factory=list)  # tokens drafted after next_token, decoded in this step
    acceptance: Acceptance = field(default_factory=Acceptance)
    replay_from: int = -1  # from this position on, each prompt token's logits replay the answer begun elsewhere
    replays: list[tuple[int, int]] = field(default_factory=list)  # (batch entry, answer token it led to)
    scored: list[tuple[int, int]] = field(default_factory=list)  # echo: (batch entry, prompt token it predicts)


class DecodeThread:
    """The one thread that runs llama.cpp compute for every model in this process.

    llama.cpp's CPU backend parallelises each decode with OpenMP, whose worker pool belongs to the
    calling thread. Two calling threads mean two pools; once libgomp manages more threads than there
    are cores it stops spinning between operations and every decode waits on wake-ups (measured here:
    97 -> 32 tokens/s). Decoding is CPU-bound anyway, so models take turns, one step each.
    """

    def __init__(self):
        self._batches: list[Batch] = []
        self._calls: list[tuple[Callable[[], Any], Future]] = []
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="llama-decode", daemon=True)
        self._thread.start()

    def add(self, batch: Batch) -> None:
        with self._wake:
            self._batches.append(batch)

    def remove(self, batch: Batch) -> None:
        with self._wake:
            self._batches.remove(batch)

    def notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Runs `fn` on the decode thread and returns its result (for compute outside a step)."""
        future: Future = Future()
        with self._wake:
            self._calls.append((fn, future))
            self._wake.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._calls or any(batch.has_work() for batch in self._batches)):
                    self._wake.wait()
                calls, self._calls = self._calls, []
                batches = list(self._batches)
            for fn, future in calls:
                try:
                    future.set_result(fn())
                except Exception as exc:
                    future.set_exception(exc)
            for batch in batches:
                batch.run_step()


_decode_thread: DecodeThread | None = None
_decode_thread_lock = threading.Lock()


def decode_thread() -> DecodeThread:
    global _decode_thread
    with _decode_thread_lock:
        if _decode_thread is None:
            _decode_thread = DecodeThread()
        return _decode_thread


class Batch:
    def __init__(self, model: llama_cpp.llama_model_p, *, n_seq: int, n_ctx: int, n_batch: int, n_threads: int,
                 flash_attn: bool, eog_tokens: frozenset[int], pieces: Pieces, name: str,
                 cache_type: int = llama_cpp.GGML_TYPE_F16, drafter: Drafter | None = None,
                 max_draft: int = 0):
        self.ctx = create_context(model, n_seq=n_seq, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads,
                                  flash_attn=flash_attn, label=name, cache_type=cache_type)
        self._memory = llama_cpp.llama_get_memory(self.ctx)
        self._capacity = max(n_batch, n_seq)
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        self._slots = [_Slot(seq_id) for seq_id in range(n_seq)]
        self._running: list[_Running] = []  # in order of arrival: earlier prompts are decoded first
        self._arrivals: list[_Running] = []
        self._lock = threading.Lock()  # guards _arrivals and _closing
        self._closing = False
        self._idle = threading.Event()
        self._eog = eog_tokens
        self._pieces = pieces
        self._drafter = drafter if max_draft > 0 else None
        self._draft_length = DraftLength(max_draft)
        self._n_ctx = n_ctx
        self.pass_cost = PassCost()
        self.steps = 0
        self._thread = decode_thread()
        self._thread.add(self)

    # -- called from the event loop (or any thread) --

    def submit(self, sequence: Sequence, release: Callable[[], None]) -> None:
        """Queues a sequence for the next step; `release` is called once it has left the batch."""
        with self._lock:
            if self._closing:
                raise Unavailable("The model is shutting down.")
            self._arrivals.append(_Running(sequence, _Slot(-1), release, [], 0))
        self._thread.notify()

    def warm_up(self, token: int) -> None:
        """Decodes once, so buffers are touched now rather than during the first request."""

        def decode() -> None:
            batch = self._batch
            batch.token[0], batch.pos[0], batch.n_seq_id[0], batch.logits[0] = token, 0, 1, True
            batch.seq_id[0][0] = 0
            batch.n_tokens = 1
            llama_cpp.llama_decode(self.ctx, batch)
            llama_cpp.llama_memory_seq_rm(self._memory, 0, -1, -1)

        self._thread.call(decode)

    def close(self) -> None:
        """Lets running sequences finish, then frees the context. Blocks: call it off the event loop."""
        with self._lock:
            self._closing = True
        self._thread.notify()
        self._idle.wait()
        self._thread.remove(self)
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self.ctx)
        self.ctx = None
        if self._drafter is not None:
            self._drafter.close()

    # -- the decode thread --

    def has_work(self) -> bool:
        return bool(self._arrivals or self._running) or (self._closing and not self._idle.is_set())

    def run_step(self) -> None:
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for run in arrivals:
            try:
                self._admit(run)
            except Exception as exc:
                self._retire(run, error=exc)
        try:
            self._step()
        except Exception as exc:  # never let the thread die: fail what was running, keep serving
            for run in list(self._running):
                self._retire(run, error=exc)
        if self._closing and not (self._arrivals or self._running):
            self._idle.set()

    def _admit(self, run: _Running) -> None:
        prompt = run.sequence.plan.prompt_tokens
        free = [slot for slot in self._slots if slot.running is None]  # never empty: slots admit requests
        slot = max(free, key=lambda s: (common_prefix(s.cached, prompt), -s.used_at))
        keep = min(common_prefix(slot.cached, prompt), len(prompt) - 1)  # decode >= 1 token: its logits
        plan = run.sequence.plan
        if plan.answer_tokens:
            # An answer begun elsewhere is decoded as it was first generated: the prompt whole, as an
            # uncached request reads it, then one token per step, each replayed through the sampler, so a
            # seed's draws and a grammar's position continue where they were. (The arithmetic of a prompt
            # read in other pieces differs in the last digits — enough to change a sampled token.)
            keep = 0
            run.replay_from = plan.answer_starts - 1
        if plan.request.echo:  # every prompt token is scored: all of them are read here
            keep = 0
            run.sequence.echo = [TokenLogprob(prompt[0], self._pieces[prompt[0]], None)]
        if not llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, keep, -1):
            keep = 0  # this cache cannot drop a tail (recurrent or sliding-window): start over
            llama_cpp.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
        del slot.cached[keep:]
        run.slot, run.pending, run.position = slot, prompt[keep:], keep
        run.sequence.cached_tokens = keep
        if self._drafter is not None:
            self._drafter.begin(slot.seq_id)
        slot.running = run
        run.sequence.start()
        if run.sequence.plan.max_new_tokens <= 0:
            run.sequence.finish("length")
            self._retire(run)
            return
        self._running.append(run)

    def _step(self) -> None:
        for run in [r for r in self._running if r.sequence.cancelled]:
            self._retire(run)
        if not self._running:
            return
        batch, n = self._batch, 0

        def put(run: _Running, token: int, sample: bool, logits: bool = False) -> None:
            nonlocal n
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, run.position, 1
            batch.logits[n] = sample or logits
            batch.seq_id[n][0] = run.slot.seq_id
            run.slot.cached.append(token)
            run.position += 1
            if sample:
                run.rows.append(n)
            n += 1

        # In seq-id order: llama.cpp splits a multi-stream batch into ubatches of consecutive sequence
        # ids, so any other order costs one more graph pass per break (1.6x slower with 8 streams).
        generating = sorted((run for run in self._running if run.next_token is not None),
                            key=lambda run: run.slot.seq_id)
        self._draft(generating)
        for run in generating:  # generating sequences first: each adds its next token and its draft
            for token in (run.next_token, *run.draft):
                put(run, token, True)
        for run in self._running:  # then prompts, oldest first, as far as the batch has room
            take = min(len(run.pending), self._capacity - n)
            if run.replay_from >= 0:  # past it, one token per step: the arithmetic of the steps that sampled them
                take = min(take, max(1, run.replay_from + 1 - run.position))
            for i in range(take):
                last = take == len(run.pending) and i == take - 1
                replayed = not last and 0 <= run.replay_from <= run.position
                if replayed:
                    run.replays.append((n, run.pending[i + 1]))
                scored = not last and run.sequence.plan.request.echo
                if scored:
                    run.scored.append((n, run.pending[i + 1]))
                put(run, run.pending[i], last, logits=replayed or scored)
            del run.pending[:take]
        batch.n_tokens = n
        rc = llama_cpp.llama_decode(self.ctx, batch)
        self.steps += 1
        if rc != 0:
            raise Unavailable(_FAILED_STEP_HINT.format(rc=rc))
        for run in list(self._running):
            sequence = run.sequence
            for row, token in run.replays:
                sequence.sampler.replay(self.ctx, row, token)
            for row, token in run.scored:
                sequence.echo.append(self._logprob(sequence, row, token))
            run.replays.clear()
            run.scored.clear()
            if run.rows:
                self._sample(run)

    def _sample(self, run: _Running) -> None:
        """Samples this step's rows in order: each drafted token is kept while it equals the token sampled
        at its position; the first sample that differs is the next token, the rest of the draft goes."""
        sequence, draft = run.sequence, run.draft
        rows, run.rows, run.draft = run.rows, [], []
        accepted, done = 0, False
        for i, row in enumerate(rows):
            token = sequence.sampler.sample(self.ctx, row)
            logprob = self._logprob(sequence, row, token) if sequence.plan.request.logprobs is not None else None
            if token in self._eog:
                sequence.finish("stop")
                done = True
            else:
                done = sequence.feed(token, self._pieces[token], logprob)
            if done or i >= len(draft) or token != draft[i]:
                run.next_token = token
                break
            accepted += 1
        if draft:
            run.acceptance.record(len(draft), accepted)
            sequence.speculation = (run.acceptance.drafted, run.acceptance.accepted)
            rejected = len(draft) - accepted
            if rejected:  # their KV cells go: the sequence continues after the last accepted token
                run.position -= rejected
                del run.slot.cached[run.position:]
                llama_cpp.llama_memory_seq_rm(self._memory, run.slot.seq_id, run.position, -1)
        if done:
            self._retire(run)

    def _draft(self, generating: list[_Running]) -> None:
        """Drafts for the generating sequences (their lengths: DraftLength), within each answer's token
        budget, its context and the room prompts leave in the batch: a prompt is read in the pieces it
        would be read in without drafts (another split changes the last bits of its logits)."""
        if self._drafter is None or not generating:
            return
        room = self._capacity - len(generating) - sum(len(run.pending) for run in self._running)
        caps = [min(room // len(generating), run.sequence.plan.max_new_tokens - run.sequence.generated - 1,
                    self._n_ctx - run.position - 1) for run in generating]
        drafts = self._draft_length.drafts(
            [run.slot.seq_id for run in generating], [run.acceptance for run in generating], self.pass_cost, caps,
            lambda count: self._drafter.propose([Want(run.slot.seq_id, [*run.slot.cached, run.next_token], count)
                                                 for run in generating]))
        for run, draft in zip(generating, drafts, strict=True):
            run.draft = draft

    def _logprob(self, sequence: Sequence, row: int, token: int) -> TokenLogprob:
        return token_logprob(self.ctx, row, token, sequence.plan.request.logprobs or 0, sequence.sampler.n_vocab,
                             self._pieces)

    def _retire(self, run: _Running, error: Exception | None = None) -> None:
        if run in self._running:
            self._running.remove(run)
        if error is not None:
            if run.slot.seq_id >= 0:  # what this sequence's cache holds is unknown now
                llama_cpp.llama_memory_seq_rm(self._memory, run.slot.seq_id, -1, -1)
                run.slot.cached.clear()
            run.sequence.emit(error)
        run.sequence.sampler.close()
        run.slot.running, run.slot.used_at = None, time.monotonic()
        run.release()
