"""Stop strings and reasoning tags split across every possible token boundary."""

from __future__ import annotations

import pytest

from engines.text_stream import ReasoningSplitter, StopMatcher


def pieces(text: str, cuts: tuple[int, ...]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def all_two_cut_splits(text: str):
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            yield pieces(text, (i, j))


def run_stop(parts, stops):
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(p) for p in parts) + matcher.flush()
    return out, matcher.stopped


@pytest.mark.parametrize("stops", [("END",), ("END", "ND!"), ("xyz", "END")])
def test_stop_string_found_across_any_split(stops):
    text = "Hello wENDorld"
    for parts in all_two_cut_splits(text):
        assert run_stop(parts, stops) == ("Hello w", True), parts


def test_no_stop_emits_everything_including_held_prefixes():
    for parts in all_two_cut_splits("ab EN"):
        assert run_stop(parts, ("END",)) == ("ab EN", False)


def test_stop_matcher_emits_early_when_safe():
    matcher = StopMatcher(("STOP",))
    assert matcher.feed("hello ST") == "hello "
    assert matcher.feed("ART") == "START"


def run_reasoning(parts, starts_inside=False):
    splitter = ReasoningSplitter(starts_inside)
    answer, reasoning = [], []
    for part in [*parts, None]:
        a, r = splitter.flush() if part is None else splitter.feed(part)
        answer.append(a)
        reasoning.append(r)
    return "".join(answer), "".join(reasoning)


def test_reasoning_split_across_any_boundary():
    text = "<think>Let me see, 2+2.</think>\n\nIt is 4."
    for parts in all_two_cut_splits(text):
        assert run_reasoning(parts) == ("It is 4.", "Let me see, 2+2."), parts


def test_reasoning_when_template_opened_the_tag():
    assert run_reasoning(["hmm", " ok</th", "ink>Answer"], starts_inside=True) == ("Answer", "hmm ok")


def test_unfinished_reasoning_stays_reasoning_and_plain_text_passes():
    assert run_reasoning(["<think>still going"]) == ("", "still going")
    assert run_reasoning(["a < b and <thin", "g>"]) == ("a < b and <thing>", "")
