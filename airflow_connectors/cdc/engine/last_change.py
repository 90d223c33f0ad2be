"""How a batch folds the changes of one row into the last one: the rule the applier buffers a keyed table by.

A batch keeps, per key, only the change that decides the row's final state; the dict's order is the order of each
key's last change. An UPDATE whose TOASTed columns arrive ``UNCHANGED`` takes them from an earlier change of the same
batch, so the sink never needs them; what is still unchanged keeps the sink's value (see ``apply_sql``). This is the
reference for ``_speedups.keyed_change``, which ``_accel`` picks when it was built; tests compare the two.
"""

from __future__ import annotations

from airflow_connectors.cdc.engine.pgoutput import UNCHANGED, Row, Value

Key = tuple[Value, ...]
Changes = dict[Key, tuple[str, Row]]  # key -> (op, row)


def keyed_change(changes: Changes, key_positions: tuple[int, ...], op: str, old: Row | None, new: Row | None) -> None:
    """Fold one change into ``changes``: ``op`` I (``new``), U (``old`` may be None or the old key) or D (``old``)."""
    if op == "D":
        assert old is not None
        _last(changes, tuple(old[i] for i in key_positions), ("D", old))
        return
    assert new is not None
    key = tuple(new[i] for i in key_positions)
    if op == "I":
        changes[key] = ("I", new)
        return
    if old is not None and any(value is not None for value in old):
        old_key = tuple(old[i] for i in key_positions)
        if old_key != key:  # the key itself changed: the old row goes away
            _last(changes, old_key, ("D", old))
    change = ("U", new)
    previous = changes.setdefault(key, change)  # one lookup for a key new to the batch, the usual case
    if previous is change:
        return
    del changes[key]  # set again below: the order is that of each key's last change
    unchanged = UNCHANGED in new
    if previous[0] != "D" and unchanged:
        # An earlier change of this batch holds the current value of the unchanged TOASTed columns.
        new = tuple(prev if value is UNCHANGED else value for value, prev in zip(new, previous[1], strict=True))
        unchanged = UNCHANGED in new
    changes[key] = ("I" if previous[0] == "I" and not unchanged else "U", new)


def _last(changes: Changes, key: Key, change: tuple[str, Row]) -> None:
    """``change`` as the last of ``key``, whatever came before."""
    if changes.setdefault(key, change) is not change:
        del changes[key]
        changes[key] = change
