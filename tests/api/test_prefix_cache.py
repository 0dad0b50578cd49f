"""A conversation's next turn reuses the KV cache of what the server has already read."""

from __future__ import annotations

from openai import OpenAI

from tests.support.servers import CHAT_MODEL, samples, total

SYSTEM = {"role": "system", "content": "You are the guide of a small maritime museum. " * 12}


def test_the_second_turn_reports_its_cached_prompt_tokens(server):
    client = OpenAI(base_url=server.v1, api_key="unused", max_retries=0, timeout=120)
    before = samples(server)
    messages = [SYSTEM, {"role": "user", "content": "What is this museum about?"}]
    first = client.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=20, temperature=0)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "When does it open?"}]
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=8, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    second = list(stream)[-1].usage

    assert second.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens
    assert second.prompt_tokens_details.cached_tokens < second.prompt_tokens  # the new messages were decoded

    after = samples(server)
    counted = {name: total(after, name, model=CHAT_MODEL) - total(before, name, model=CHAT_MODEL)
               for name in ("playground_prompt_tokens_total", "playground_prompt_tokens_cached_total")}
    assert counted["playground_prompt_tokens_total"] == first.usage.prompt_tokens + second.prompt_tokens
    assert counted["playground_prompt_tokens_cached_total"] == (
        first.usage.prompt_tokens_details.cached_tokens + second.prompt_tokens_details.cached_tokens)
