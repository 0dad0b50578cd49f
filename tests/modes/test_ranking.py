"""The council's ranking parser on the ways models actually write rankings."""

from __future__ import annotations

import pytest

from modes.ranking import aggregate, parse_ranking, read_ranking

LABELS = ["A", "B", "C"]

CASES = [
    ("FINAL RANKING:\n1. Response B\n2. Response A\n3. Response C", ["B", "A", "C"]),
    ("Response A is vague. Response C is best.\n\nFINAL RANKING:\n1. Response C\n2. Response B\n3. Response A",
     ["C", "B", "A"]),  # mentions before the final section are ignored
    ("**Final Ranking:**\n1. **Response C**\n2. **Response A**\n3. **Response B**", ["C", "A", "B"]),
    ("final ranking - 1) response b 2) response c 3) response a", ["B", "C", "A"]),
    ("FINAL RANKING: Response B > Response C > Response A", ["B", "C", "A"]),
    ("FINAL RANKING:\n1. B\n2. C\n3. A", ["B", "C", "A"]),
    ("FINAL RANKING:\n- C\n- A\n- B", ["C", "A", "B"]),
    ("FINAL RANKING: B, A, C", ["B", "A", "C"]),
    ("FINAL RANKING: C > A > B", ["C", "A", "B"]),
    ("My ranking:\n1. Response (A)\n2. Response [C]\n3. Response \"B\"", ["A", "C", "B"]),
    ("FINAL RANKING:\n1. Response B\n2. Response B\n3. Response D\n4. Response A", ["B", "A"]),  # repeats, unknowns
    ("FINAL RANKING:\nFirst: Response C\nSecond: Response A", ["C", "A"]),
    ("I think all of them are good.", []),
    ("FINAL RANKING:\n1. Response A (clear and correct)\n2. Response C (too short)\n3. Response B", ["A", "C", "B"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_ranking(text, expected):
    assert parse_ranking(text, LABELS) == expected


def test_aggregate_by_mean_position_with_and_without_self_votes():
    label_of = {"m1": "A", "m2": "B", "m3": "C"}
    rankings = {"m1": ["A", "B", "C"], "m2": ["B", "A", "C"], "m3": ["A", "C", "B"]}
    with_self = aggregate(rankings, label_of, exclude_self=False)
    assert [(r["member"], r["mean_position"]) for r in with_self] == [("m1", 1.333), ("m2", 2.0), ("m3", 2.667)]
    without_self = aggregate(rankings, label_of, exclude_self=True)
    # each ranker's own label is dropped before positions are counted: m2 ranks [A, C], m3 ranks [A, B], ...
    assert [(r["member"], r["mean_position"], r["votes"]) for r in without_self] == [
        ("m1", 1.0, 2), ("m2", 1.5, 2), ("m3", 2.0, 2)]


def test_read_ranking_takes_schema_json_or_falls_back_to_text():
    assert read_ranking('{"evaluation": "ok", "final_ranking": ["Response C", "Response A", "Response B"]}',
                        LABELS) == ["C", "A", "B"]
    assert read_ranking("FINAL RANKING: 1. Response B 2. Response A", LABELS) == ["B", "A"]
    assert read_ranking('{"final_ranking": 3}', LABELS) == []
