"""The schema budget: what crashed or wedged the grammar builder is refused with the field's path;
the schemas this project itself sends (rankings, UI specs, quick actions) pass."""

from __future__ import annotations

import json

import pytest
from llama_cpp.llama_grammar import json_schema_to_gbnf

from engines.errors import InvalidRequest
from engines.schema_budget import LIMITS, check_grammar, check_schema
from genui.generate import QUICK_ACTIONS_SCHEMA
from genui.spec import UI_SPEC_SCHEMA
from modes.ranking import ranking_schema
from modes.roundtable import CONVERGED_SCHEMA


def deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(("schema", "param"), [
    ({"type": "string", "maxLength": 1_000_000}, "s.maxLength"),
    ({"type": "string", "minLength": 200_000_000}, "s.minLength"),
    ({"type": "array", "maxItems": 500_000}, "s.maxItems"),
    ({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a{0,300000}$"}}}, "s.properties.x.pattern"),
    ({"anyOf": [{"type": "string"}, {"enum": list(range(5000))}]}, "s.anyOf[1].enum"),
    ({"type": "string", "pattern": "a" * 2000}, "s.pattern"),
    (deep(3000), "s"),  # deeper than Python's own recursion: checked without recursing
    ({"description": "x" * 40_000}, "s"),
])
def test_schemas_over_the_limits_are_refused_naming_the_field(schema, param):
    with pytest.raises(InvalidRequest) as refused:
        check_schema(schema, "s")
    assert refused.value.param == param


def test_the_projects_own_schemas_and_the_limits_themselves_pass():
    for schema in (ranking_schema(["A", "B", "C"]), UI_SPEC_SCHEMA, QUICK_ACTIONS_SCHEMA, CONVERGED_SCHEMA,
                   {"type": "string", "maxLength": LIMITS.max_upper_bound, "pattern": "^a{0,1000}$"},
                   deep(LIMITS.max_depth // 2 - 1)):
        check_schema(json.loads(json.dumps(schema)), "s")
        check_grammar(json_schema_to_gbnf(json.dumps(schema)), "s")
