"""The sink naming rule alone: unique by construction, stable when tables appear, truncation-safe."""

from __future__ import annotations

import pytest

from airflow_connectors.cdc.sink_naming import MAX_BYTES, SinkNameClash, assign


def test_own_names_win_and_a_prefixed_name_that_is_taken_gets_a_hash() -> None:
    tables = [("q1", "w"), ("q2", "w"), ("q3", "q1_w")]
    names = assign(tables, {}, {})
    assert names[("q3", "q1_w")] == "q1_w" and names[("q2", "w")] == "q2_w"
    assert names[("q1", "w")].startswith("q1_w_") and len(names[("q1", "w")]) == len("q1_w_") + 8
    assert len(set(names.values())) == 3
    assert assign(list(reversed(tables)), {}, {}) == names  # the order tables are listed in does not matter


def test_recorded_names_never_change_when_another_table_appears() -> None:
    first = assign([("q1", "w")], {}, {})
    assert first == {("q1", "w"): "w"}
    later = assign([("q1", "w"), ("q2", "w")], {}, first)
    assert later == {("q1", "w"): "w", ("q2", "w"): "q2_w"}
    # A recorded table that is no longer selected keeps its name reserved.
    assert assign([("q2", "w")], {}, first) == {("q2", "w"): "q2_w"}


def test_long_schema_names_that_collide_after_truncation_stay_apart() -> None:
    one, two = ("s" * 61 + "a", "t"), ("s" * 61 + "b", "t")
    names = assign([one, two], {}, {})
    assert names[one] != names[two]
    assert all(len(name.encode()) <= MAX_BYTES for name in names.values())
    assert names[one].startswith("s" * 54 + "_")


def test_multibyte_names_are_truncated_on_a_character_boundary() -> None:
    one, two = ("é" * 40, "t"), ("é" * 40 + "x", "t")
    names = assign([one, two], {}, {})
    assert len(set(names.values())) == 2
    for name in names.values():
        assert len(name.encode()) <= MAX_BYTES
        name.encode().decode()  # valid UTF-8


def test_explicit_names_are_used_and_clashes_refused() -> None:
    assert assign([("a", "t"), ("b", "t")], {("b", "t"): "bee"}, {}) == {("a", "t"): "t", ("b", "t"): "bee"}
    with pytest.raises(SinkNameClash, match="already the sink table of a.x") as caught:
        assign([("a", "x"), ("b", "y")], {("a", "x"): "same", ("b", "y"): "same"}, {})
    assert caught.value.table == ("b", "y")
    with pytest.raises(SinkNameClash, match="sink table name of q1.w"):
        assign([("q1", "w"), ("q3", "x")], {("q3", "x"): "w"}, {})
    with pytest.raises(SinkNameClash, match="already the sink table of q1.w"):
        assign([("q1", "w"), ("q3", "x")], {("q3", "x"): "w"}, {("q1", "w"): "w"})


def test_an_explicit_name_replaces_a_recorded_one_and_frees_it() -> None:
    names = assign([("a", "t"), ("b", "u")], {("a", "t"): "renamed"}, {("a", "t"): "t", ("b", "u"): "u"})
    assert names == {("a", "t"): "renamed", ("b", "u"): "u"}
