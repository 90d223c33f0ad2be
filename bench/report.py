"""``RESULTS.md`` (figures, ratios, goals, machine, the command to reproduce) and ``results.json`` (raw numbers).

What limits each figure is written by hand in ``bench/NOTES.md`` (it needs judgement, not numbers) and appended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NOTES = Path(__file__).resolve().parent / "NOTES.md"
RSS_GOAL_MB = 300


def _s(value: float | None) -> str:
    return "missing" if value is None else f"{value:.2f} s"


def _ratio(ours: float | None, base: float | None) -> float | None:
    return None if ours is None or not base else ours / base


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(ok: bool | None) -> str:
    return "missing" if ok is None else ("yes" if ok else "**no**")


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MB"


def _json(value: Any) -> str:
    """Compact JSON with floats to 3 decimals, for the details section."""

    def rounded(item: Any) -> Any:
        if isinstance(item, float):
            return round(item, 3)
        if isinstance(item, dict):
            return {key: rounded(val) for key, val in item.items()}
        if isinstance(item, list):
            return [rounded(val) for val in item]
        return item

    return json.dumps(rounded(value))


def rows_of(results: dict[str, Any]) -> list[list[str]]:
    table = []
    for snap in results["snapshot"]:
        native = _ratio(snap["ours_s"], snap["native_s"])
        table.append(
            [
                f"snapshot of {snap['rows']:,} rows",
                f"native initial sync {_s(snap['native_s'])}; raw binary COPY pipe {_s(snap['copy_pipe_s'])}",
                f"{_s(snap['ours_s'])} (catch-up run)",
                f"{_x(native)} native; {_x(_ratio(snap['ours_s'], snap['copy_pipe_s']))} COPY pipe",
                "<= 0.8x native",
                _met(None if native is None else native <= 0.8),
                _mb(snap["ours_rss_mb"]),
            ]
        )
    upd = results["update"]
    ratio = _ratio(upd["ours_s"], upd["native_s"])
    table.append(
        [
            f"one {upd['rows']:,}-row UPDATE applied",
            f"native {_s(upd['native_s'])} from COMMIT ({_s(upd['native_from_update_start_s'])} from the UPDATE's"
            f" start; the UPDATE took {_s(upd['native_update']['update_s'])})",
            f"{_s(upd['ours_s'])} (catch-up run started after COMMIT)",
            _x(ratio),
            "<= 0.7x native",
            _met(None if ratio is None else ratio <= 0.7),
            _mb(upd.get("ours_rss_mb")),
        ]
    )
    lag = results["stream"]
    native, ours = lag["native"], lag.get("ours")
    table.append(
        [
            f"{lag['transactions']:,} single-row transactions (pgbench -c 2 -j 2), lag after the load",
            f"native {_s(native['lag_s'])}, {native['lag_bytes']:,} bytes behind at load end",
            "missing" if ours is None else f"{_s(ours['lag_s'])}, {ours['lag_bytes']:,} bytes behind at load end",
            _x(None if ours is None else _ratio(ours["lag_s"], native["lag_s"])),
            "lag <= 2 s",
            _met(None if ours is None else ours["lag_s"] <= 2),
            _mb(lag.get("ours_rss_mb")),
        ]
    )
    check = results.get("verify")
    if check is not None:
        table.append(
            [
                f"verification of a {check['rows']:,}-row replica (count + checksum per key range, both sides)",
                f"one whole-table checksum query per side, one after the other {_s(check.get('whole_table_s'))}",
                f"{_s(check['ours_s'])} ({check.get('chunks', '-')} key ranges; corrupted row caught: "
                f"{check.get('corruption_caught', '-')})",
                _x(_ratio(check["ours_s"], check.get("whole_table_s"))),
                "-",
                "-",
                _mb(check.get("ours_rss_mb")),
            ]
        )
    peaks = [s["ours_rss_mb"] for s in results["snapshot"]] + [upd.get("ours_rss_mb"), lag.get("ours_rss_mb")]
    peaks += [check.get("ours_rss_mb")] if check is not None else []
    known = [p for p in peaks if p is not None]
    peak = max(known) if known else None
    table.append(
        [
            "peak RSS of our run, all of the above",
            "-",
            _mb(peak),
            "-",
            f"<= {RSS_GOAL_MB} MB",
            _met(None if len(known) < len(peaks) else peak is not None and peak <= RSS_GOAL_MB),
            _mb(peak),
        ]
    )
    return table


def missing(results: dict[str, Any]) -> list[str]:
    found = [(f"snapshot of {s['rows']:,} rows", s["ours_error"]) for s in results["snapshot"]]
    found += [("one big UPDATE", results["update"]["ours_error"]), ("stream lag", results["stream"]["ours_error"])]
    if "verify" in results:
        found.append(("verification", results["verify"]["ours_error"]))
    return [f"- {what}: our figure is missing: {error}" for what, error in found if error]


def details(results: dict[str, Any]) -> list[str]:
    upd, lag = results["update"], results["stream"]
    lines = []
    for snap in results["snapshot"]:
        lines.append(f"- Snapshot of {snap['rows']:,} rows, every round (median reported): `{_json(snap['samples'])}`;")
        lines.append(f"  our phases began (s after the run started): `{_json(snap['ours_phases'])}`")
    lines.append(
        f"- UPDATE: {upd['native_update']['wal_bytes']:,} bytes of WAL; native subscription `streaming = "
        f"{upd['native_streaming']}` (the default here); ours applied {upd.get('ours_rows', '-')} changes, "
        f"{_s(upd.get('ours_wall_from_commit_s'))} from COMMIT to our process's exit (interpreter start included);"
        f" phases began at `{_json(upd.get('ours_phases'))}` s."
    )
    for who in ("native", "ours"):
        load, caught = lag.get(f"{who}_load"), lag.get(who)
        if load and caught:
            lines.append(
                f"- Stream, {who}: load {load['load_s']:.1f} s ({load['tps'] or 0:.0f} tps); applied position reached"
                f" the source's WAL insert LSN at load end: {caught['reached']}, {caught['short_bytes']:,} B short."
            )
    return lines


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    machine, load = results["machine"], results["load"]
    lines = [
        "# Benchmark results",
        "",
        f"Reproduce: `{results['command']}` from the repository root (writes this file and `results.json` next to it).",
        f"Run {results['started_at']} for {results['duration_s'] / 60:.1f} min on commit {results['commit']}.",
        "",
        "Every figure is measured in the same run on one machine, against baselines measured in that run: two",
        "embedded PostgreSQL clusters on loopback (source and sink, the same settings for our engine and for the",
        "native baselines). Ratio = ours / baseline (lower is better). Peak RSS is our engine process's `ru_maxrss`.",
        "",
        "| scenario | baseline | ours | ratio | goal | met | peak RSS (ours) |",
        "|---|---|---|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in rows_of(results)),
        "",
    ]
    gaps = missing(results)
    if gaps:
        lines += ["## Missing figures", "", *gaps, ""]
    lines += ["## Details", "", *details(results), ""]
    lines += [
        "## Machine",
        "",
        f"- {machine['platform']}; {machine['cpu']}, {machine['cores']} cores; {machine['memory_gb']:.0f} GB RAM",
        f"- {machine['postgres']}; Python {machine['python']}; psycopg {machine['psycopg']}",
        f"- Server settings (both clusters): `{json.dumps(machine['settings'])}`",
        f"- Load average (1 min) at start {load['start']:.2f}, end {load['end']:.2f}; per scenario"
        f" `{json.dumps(load['scenarios'])}`. {results['load_note']}",
        "",
    ]
    (out / "RESULTS.md").write_text("\n".join(lines) + ("\n" + NOTES.read_text() if NOTES.exists() else ""))
