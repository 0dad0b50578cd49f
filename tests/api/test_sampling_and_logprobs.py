"""Logprobs (chat and legacy completions, streamed and not, echo), token-id prompts, the sampling
controls (logit_bias, penalties, top_k, min_p, repeat_penalty) and the tokenizer routes, on the real
server with the official openai client."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from openai import OpenAI

from tests.support.servers import CHAT_MODEL

HI = [{"role": "user", "content": "Say hello to the world."}]


def client(server) -> OpenAI:
    return OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=120)


def test_chat_logprobs_describe_each_token_streamed_or_not(server):
    reply = client(server).chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=8, temperature=0,
                                                   logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert "".join(entry.token for entry in content) == reply.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and bytes(entry.bytes).decode() == entry.token
        assert len(entry.top_logprobs) == 3
        assert [a.logprob for a in entry.top_logprobs] == sorted((a.logprob for a in entry.top_logprobs), reverse=True)
        assert entry.top_logprobs[0].token == entry.token  # greedy: the likeliest is the one chosen
        assert math.isclose(entry.top_logprobs[0].logprob, entry.logprob)
    streamed = client(server).chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=8, temperature=0,
                                                      logprobs=True, stream=True)
    entries = [e for c in streamed if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.token for e in entries] == [e.token for e in content]
    assert all(math.isclose(a.logprob, b.logprob, abs_tol=1e-4) for a, b in zip(entries, content, strict=True))
    assert all(e.top_logprobs == [] for e in entries)  # none asked for


def generate_with_ids(server, prompt: list[int] | str, max_tokens: int, **extra) -> tuple[list[int], list[float]]:
    """A greedy answer's token ids and log-probabilities (streamed, with the return_tokens extension)."""
    body = {"model": CHAT_MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "logprobs": 0,
            "stream": True, "return_tokens": True, **extra}
    tokens, logprobs = [], []
    with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                tokens += choice["tokens"]
                logprobs += choice["logprobs"]["token_logprobs"]
    return tokens, logprobs


def test_echo_scores_the_prompt_as_generation_scored_the_answer(server):
    """lm-evaluation-harness's loglikelihood request: token ids, echo, logprobs=1, max_tokens=1."""
    ids = httpx.post(server.url + "/tokenize", json={"content": "The capital of France is"}).json()["tokens"]
    answer_ids, answer_logprobs = generate_with_ids(server, ids, 6)
    assert len(answer_ids) == len(answer_logprobs) == 6
    scored = client(server).completions.create(model=CHAT_MODEL, prompt=[ids + answer_ids], max_tokens=1,
                                               temperature=0, logprobs=1, echo=True)
    logprobs = scored.choices[0].logprobs
    assert len(logprobs.tokens) == len(ids) + len(answer_ids) + 1 == scored.usage.prompt_tokens + 1
    assert logprobs.token_logprobs[0] is None and logprobs.top_logprobs[0] is None
    assert "".join(logprobs.tokens) == scored.choices[0].text
    assert scored.choices[0].text.startswith("The capital of France is")
    assert logprobs.text_offset == sorted(logprobs.text_offset) and logprobs.text_offset[0] == 0
    # The answer's tokens, read back as prompt, have about the log-probabilities they were generated with:
    # read in one batch rather than a step each, the quantized arithmetic differs (up to ~0.1 measured),
    # while a misaligned position would be off by whole units.
    for read, made in zip(logprobs.token_logprobs[len(ids):-1], answer_logprobs, strict=True):
        assert math.isclose(read, made, abs_tol=0.3), (read, made)
    for top, chosen in zip(logprobs.top_logprobs[len(ids):-1], logprobs.token_logprobs[len(ids):-1], strict=True):
        assert max(top.values()) - chosen < 0.3  # greedy answers are (about) the likeliest: lm-eval's is_greedy


def test_token_ids_outside_the_vocabulary_are_refused(server):
    for body, param in (({"prompt": [10**9], "max_tokens": 1}, "prompt"),
                        ({"prompt": "Hi", "max_tokens": 1, "logit_bias": {"999999999": 5}}, "logit_bias")):
        refused = httpx.post(server.v1 + "/completions", json={"model": CHAT_MODEL, **body})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text
    for body in ({"logprobs": False, "top_logprobs": 2}, {"logprobs": True, "top_logprobs": 21}):
        refused = httpx.post(server.v1 + "/chat/completions", json={"model": CHAT_MODEL, "messages": HI, **body})
        assert refused.status_code == 400, refused.text


def test_logit_bias_bans_and_forces_tokens(server):
    plain, _ = generate_with_ids(server, "1, 2, 3,", 4)
    banned, _ = generate_with_ids(server, "1, 2, 3,", 4, logit_bias={str(plain[0]): -100})
    assert banned[0] != plain[0] and plain[0] not in banned
    word = httpx.post(server.url + "/tokenize", json={"content": " banana"}).json()["tokens"]
    forced, _ = generate_with_ids(server, "1, 2, 3,", 3, logit_bias={str(word[0]): 100})
    assert forced[0] == word[0]


def test_penalties_change_the_answer_and_a_seed_still_reproduces_it(server):
    api = client(server)
    plain, _ = generate_with_ids(server, "1, 1, 1, 1, 1, 1,", 16)
    penalized, _ = generate_with_ids(server, "1, 1, 1, 1, 1, 1,", 16, frequency_penalty=2.0, presence_penalty=2.0)
    assert max(map(plain.count, plain)) > max(map(penalized.count, penalized)), (plain, penalized)
    sampled = {"model": CHAT_MODEL, "messages": HI, "max_tokens": 24, "temperature": 0.9, "seed": 5,
               "presence_penalty": 0.5, "frequency_penalty": 0.5,
               "extra_body": {"top_k": 20, "min_p": 0.1, "repeat_penalty": 1.3}}
    answers = {api.chat.completions.create(**sampled).choices[0].message.content for _ in range(2)}
    assert len(answers) == 1


@pytest.mark.parametrize("text_field", ["content", "prompt"])  # llama-server's name, vLLM's
def test_tokenizer_routes_round_trip(server, text_field):
    text = "Hello, wörld! 🌍"
    tokenized = httpx.post(server.url + "/tokenize", json={text_field: text, "model": CHAT_MODEL}).json()
    assert tokenized["count"] == len(tokenized["tokens"]) > 3 and tokenized["max_model_len"] > 0
    back = httpx.post(server.url + "/detokenize", json={"tokens": tokenized["tokens"]}).json()
    assert back["content"] == back["prompt"] == text
    pieces = httpx.post(server.url + "/tokenize", json={text_field: text, "with_pieces": True}).json()["tokens"]
    assert [p["id"] for p in pieces] == tokenized["tokens"]
    info = httpx.get(server.url + "/tokenizer_info", params={"model": CHAT_MODEL}).json()
    assert info["eos_token"] and info["chat_template"] and info["vocab_size"] > 1000
    unknown = httpx.post(server.url + "/tokenize", json={text_field: text, "model": "nope"})
    assert unknown.status_code == 404
