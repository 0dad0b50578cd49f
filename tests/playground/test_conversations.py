"""The Chat tab's saved conversations and their files: the pure parts (the browser side is in test_chat_tab.py)."""

from __future__ import annotations

import json
import os

import gradio as gr
import pytest

from playground import conversations as conv
from playground.chat_files import ExportFolder, export_json, export_markdown, read_import

CHAT = [{"role": "user", "content": [{"type": "text", "text": "What is   the capital\nof France?"}]},
        {"role": "assistant", "content": "Routed", "metadata": {"title": "auto → smollm2", "status": "done"}},
        {"role": "assistant", "content": "Paris.", "options": [{"value": "Tell me more"}]},
        {"role": "assistant", "content": "", "metadata": {"title": "TTFT 80 ms · 50.0 tok/s · 3 tokens",
                                                          "status": "done", "id": 7, "evil": "<script>"}}]


def test_saving_a_first_chat_creates_a_titled_conversation_and_keeps_what_is_shown():
    store, cid, dropped = conv.save(None, None, CHAT)
    assert cid and store["current"] == cid and not dropped
    [saved] = store["conversations"]
    assert saved["title"] == "What is the capital of France?" and not saved["named"]
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "assistant", "assistant"]
    assert saved["messages"][0]["content"] == "What is   the capital\nof France?"
    assert "options" not in saved["messages"][2]  # quick actions belong to their moment
    assert saved["messages"][3]["metadata"] == {"title": "TTFT 80 ms · 50.0 tok/s · 3 tokens", "status": "done"}
    assert conv.save(store, None, [])[0] == store  # clearing a chat that was never saved saves nothing


def test_new_rename_switch_and_delete():
    store, first, _ = conv.save(None, None, CHAT)
    store, second = conv.new_conversation(store, first)
    assert second != first and store["current"] == second
    assert conv.new_conversation(store, second)[1] == second  # an empty chat is reused, not piled up
    store, second, _ = conv.save(store, second, [{"role": "user", "content": "Hello"}])
    store = conv.rename(store, second, "  My   greeting ")
    assert conv.choices(store) == [("My greeting", second), ("What is the capital of France?", first)]
    store, _, _ = conv.save(store, second, [{"role": "user", "content": "Other words"}])
    assert conv.find(store, second)["title"] == "My greeting"  # a chosen name stays
    store, opened, messages = conv.switch(store, first)
    assert opened == first == store["current"] and messages[-2]["content"] == "Paris."
    store, opened, messages = conv.delete(store, first)
    assert opened == second and messages == [{"role": "user", "content": "Other words"}]
    store, opened, messages = conv.delete(store, second)
    assert store == conv.empty_store() and opened is None and messages == []


@pytest.mark.parametrize("call, message", [
    (lambda s, c: conv.rename(s, c, "   "), "Type a name"),
    (lambda s, c: conv.rename(s, c, "x" * 81), "at most 80 characters"),
    (lambda s, c: conv.rename(s, "gone", "Name"), "Start or pick a conversation"),
    (lambda s, c: conv.switch(s, "gone"), "no longer saved"),
    (lambda s, c: conv.delete(s, None), "nothing to delete"),
])
def test_bad_operations_say_what_to_do(call, message):
    store, cid, _ = conv.save(None, None, CHAT)
    with pytest.raises(gr.Error, match=message):
        call(store, cid)


def test_whatever_the_browser_sends_is_read_as_a_valid_store():
    assert conv.read_store("junk") == conv.empty_store()
    store = conv.read_store({"current": "b", "conversations": [
        {"id": "a", "title": "", "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"},
                                              "junk", {"role": "assistant", "content": 5}]},
        {"id": "a", "title": "duplicate"}, {"title": "no id"}, 7,
        {"id": "c", "title": "Named", "named": True, "messages": "not a list"}]})
    assert store == {"current": None, "conversations": [
        {"id": "a", "title": "Hi", "named": False, "messages": [{"role": "user", "content": "Hi"},
                                                                 {"role": "assistant", "content": "5"}]},
        {"id": "c", "title": "Named", "named": True, "messages": []}]}


def test_the_store_stays_within_its_bounds_dropping_the_oldest_but_never_the_current():
    store, cid = conv.empty_store(), None
    big = "word " * 20_000  # 100 kB a chat: ten fill the store
    ids = []
    for n in range(12):
        store, cid = conv.new_conversation(store, cid)
        store, cid, dropped = conv.save(store, cid, [{"role": "user", "content": f"{n} {big}"}])
        ids.append(cid)
    assert conv.size_of(store) <= conv.MAX_STORE_BYTES
    kept = [c["id"] for c in store["conversations"]]
    assert kept[0] == ids[-1] and ids[0] not in kept and len(kept) < 12
    # reopening an old one and saving it makes it the most recent: the oldest *other* one goes
    store, opened, _ = conv.switch(store, kept[-1])
    store, _, dropped = conv.save(store, opened, [{"role": "user", "content": "short now"}])
    assert store["conversations"][0]["id"] == opened and not dropped
    with pytest.raises(gr.Error, match="delete"):  # an import that does not fit is refused, nothing dropped
        conv.add(store, "Imported", [{"role": "user", "content": big * 3}])


def test_export_json_imports_back_to_the_same_conversation():
    store, cid, _ = conv.save(None, None, CHAT)
    saved = conv.find(store, cid)
    document = json.loads(export_json(saved["title"], saved["messages"]))
    assert document["format"] == "serverless-llm-playground.chat" and document["version"] == 1
    assert read_import(export_json(saved["title"], saved["messages"]).encode()) == (saved["title"], saved["messages"])
    bare = json.dumps([{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello"}])
    assert read_import(bare.encode()) == ("Hi there", [{"role": "user", "content": "Hi there"},
                                                      {"role": "assistant", "content": "Hello"}])


def test_export_markdown_reads_as_a_transcript():
    store, cid, _ = conv.save(None, None, CHAT)
    saved = conv.find(store, cid)
    text = export_markdown(saved["title"], saved["messages"])
    assert text.startswith("# What is the capital of France?\n")
    assert "**User:**\n\nWhat is   the capital\nof France?" in text and "**Assistant:**\n\nParis." in text
    assert "<details><summary>auto → smollm2</summary>\n\nRouted" in text
    assert "*TTFT 80 ms · 50.0 tok/s · 3 tokens*" in text


def test_export_files_are_written_and_old_ones_pruned(tmp_path):
    folder = ExportFolder(tmp_path)
    json_path, markdown_path = folder.write("Été à Paris!", [{"role": "user", "content": "Bonjour"}])
    assert json_path.endswith("chat-t-paris.json") and markdown_path.endswith("chat-t-paris.md")
    assert json.loads(open(json_path, encoding="utf-8").read())["messages"][0]["content"] == "Bonjour"
    old = os.path.dirname(json_path)
    os.utime(old, (0, 0))
    folder.write("Next", [{"role": "user", "content": "x"}])
    assert not os.path.exists(old) and len(os.listdir(tmp_path)) == 1


@pytest.mark.parametrize("data, message", [
    (b"\xff\xfe", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b'"a string"', 'no "messages" list'),
    (json.dumps({"format": "other-app", "messages": []}).encode(), "'other-app' file"),
    (json.dumps({"version": 2, "messages": []}).encode(), "version 2 of the chat format"),
    (json.dumps({"title": 5, "messages": []}).encode(), "title is not text"),
    (json.dumps({"messages": []}).encode(), "no messages with text"),
    (json.dumps({"messages": ["hi"]}).encode(), r"messages\[0\] is not an object"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}).encode(),
     r"messages\[1\] has role 'tool'"),
    (json.dumps({"messages": [{"role": "user", "content": {"x": 1}}]}).encode(), "neither text nor"),
    (json.dumps({"messages": [{"role": "user", "content": "a", "metadata": "x"}]}).encode(), "metadata"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}] * 2001}).encode(), "at most 2000"),
    (b" " * 1_000_001, "1000001 bytes"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_bad_import_is_a_clear_error(data, message):
    with pytest.raises(gr.Error, match=message) as caught:
        read_import(data)
    assert "Nothing was changed" in caught.value.message
