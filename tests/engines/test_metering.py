"""The per-caller token budget: refused when empty with a retry time, refilled evenly, and its state
bounded (callers whose bucket is full again are forgotten)."""

from __future__ import annotations

import pytest

from engines import metering
from engines.errors import Overloaded
from engines.metering import TokenBudget


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_empty_bucket_refuses_until_it_refills():
    clock = Clock()
    budget = TokenBudget(60, clock=clock)  # a token a second
    budget.admit("a")
    budget.spend(70, "a")  # one long answer: ten tokens of debt
    with pytest.raises(Overloaded) as refused:
        budget.admit("a")
    assert refused.value.retry_after == 11 and "60 tokens per minute" in refused.value.message
    budget.admit("b")  # others have their own bucket
    clock.now += 11
    budget.admit("a")


def test_state_stays_bounded(monkeypatch):
    clock = Clock()
    budget = TokenBudget(60, clock=clock)
    for n in range(50):
        budget.spend(5, f"caller-{n}")
    assert len(budget) == 50
    clock.now += 10  # full again after 5 s: forgotten at the next spend
    budget.spend(5, "newcomer")
    assert len(budget) == 1
    monkeypatch.setattr(metering, "MAX_CALLERS", 10)
    for n in range(30):  # a flood of addresses within the refill time: the oldest go first
        budget.spend(60, f"flood-{n}")
    assert len(budget) == 10


def test_nobody_named_is_not_metered():
    budget = TokenBudget(1)
    budget.spend(1000)  # no caller in this context (a background job): nothing recorded
    budget.admit()
    assert len(budget) == 0
