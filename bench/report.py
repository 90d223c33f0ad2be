"""``RESULTS.md`` (figures, ratios, targets, machine, the command to reproduce), ``results.json`` (raw numbers) and
the summary in ``README.md`` (the same sentences, so README quotes RESULTS.md exactly).

What limits each figure is written by hand in ``bench/NOTES.md`` (it needs judgement, not numbers) and appended.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

NOTES = Path(__file__).resolve().parent / "NOTES.md"
README = NOTES.parent.parent / "README.md"
SUMMARY_START, SUMMARY_END = "<!-- bench summary: written by make bench -->", "<!-- end of bench summary -->"
RSS_TARGET_MB = 300
# Targets of issue 14, for our figure through the service API, as ours / native (streaming = on) in the same run.
SNAPSHOT_TARGET, CATCH_UP_TARGET, CONTINUOUS_TARGET, LAG_TARGET_S = 1.0, 1.0, 0.8, 1.0


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


def _with_ratio(ours: float | None, native: float | None) -> str:
    return _s(ours) if ours is None else f"{_s(ours)} ({_x(_ratio(ours, native))})"


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


def rows_of(server: dict[str, Any]) -> list[dict[str, str]]:
    """One dict per table row: scenario, native, engine, api, ratio (api / native), target, met."""
    rows = []
    for snap in server["snapshot"]:
        native, api = snap["native_s"], snap.get("api_s")
        ratio = _ratio(api, native)
        rows.append(
            {
                "scenario": f"snapshot of {snap['rows']:,} rows (initial copy)",
                "native": f"{_s(native)} (raw binary COPY pipe {_s(snap['copy_pipe_s'])})",
                "engine": _with_ratio(snap.get("engine_s"), native),
                "api": _s(api),
                "ratio": _x(ratio),
                "target": f"<= {SNAPSHOT_TARGET:.1f}x",
                "met": _met(None if ratio is None else ratio <= SNAPSHOT_TARGET),
            }
        )
    upd = server["update"]
    native = upd["native_from_start_s"]
    for kind, title, target in (
        ("catch_up", "catch-up run started after COMMIT (UPDATE start -> run done)", CATCH_UP_TARGET),
        ("continuous", "continuous run active (UPDATE start -> visible in the sink)", CONTINUOUS_TARGET),
    ):
        figures = upd[kind]
        api = figures.get("api", {}).get("from_start_s")
        ratio = _ratio(api, native)
        rows.append(
            {
                "scenario": f"one {upd['rows']:,}-row UPDATE, {title}",
                "native": f"{_s(native)} (the UPDATE itself {_s(upd['native_update_s'])})",
                "engine": _with_ratio(figures.get("engine", {}).get("from_start_s"), native),
                "api": _s(api),
                "ratio": _x(ratio),
                "target": f"<= {target:.1f}x",
                "met": _met(None if ratio is None else ratio <= target),
            }
        )
    lag = server["stream"]
    ours = lag["ours"]
    api_lag = ours.get("api", {}).get("lag_s")
    rows.append(
        {
            "scenario": f"{lag['transactions']:,} single-row transactions (pgbench -c 2 -j 2), lag after the load",
            "native": _s(lag["native"]["lag_s"]),
            "engine": _s(ours.get("engine", {}).get("lag_s")),
            "api": _s(api_lag),
            "ratio": _x(_ratio(api_lag, lag["native"]["lag_s"])),
            "target": f"<= {LAG_TARGET_S:.0f} s",
            "met": _met(None if api_lag is None else api_lag <= LAG_TARGET_S),
        }
    )
    check = server.get("verify")
    if check is not None:  # the engine alone: verification is the same work through the API
        rows.append(
            {
                "scenario": f"verification of a {check['rows']:,}-row replica (count + checksum per key range)",
                "native": f"whole-table checksum query per side {_s(check.get('whole_table_s'))}",
                "engine": f"{_s(check['ours_s'])} ({check.get('chunks', '-')} ranges; corrupted row caught: "
                f"{check.get('corruption_caught', '-')})",
                "api": "-",
                "ratio": _x(_ratio(check["ours_s"], check.get("whole_table_s"))),
                "target": "-",
                "met": "-",
            }
        )
    engine_peaks = [
        part["rss_mb"].get("engine") for part in (*server["snapshot"], upd, lag) if "engine" in part["rss_mb"]
    ]
    service = server.get("service_rss_mb")
    rows.append(
        {
            "scenario": "peak RSS (engine: its process; API: the service and its run workers)",
            "native": "-",
            "engine": _mb(max(engine_peaks) if engine_peaks else None),
            "api": _mb(service),
            "ratio": "-",
            "target": f"<= {RSS_TARGET_MB} MB",
            "met": _met(None if not service else service <= RSS_TARGET_MB),
        }
    )
    return rows


def summary(results: dict[str, Any]) -> list[str]:
    """README's summary: one line per release and scenario, in RESULTS.md's own words and figures."""
    lines = []
    for server in results["servers"]:
        for row in rows_of(server):
            if row["native"] == "-":
                figure = f"{row['api']} (target {row['target']}: {row['met']})"
            else:
                figure = (
                    f"{row['api']} through the API, {row['native'].split(' (')[0]} native: {row['ratio']}"
                    f" (target {row['target']}: {row['met']})"
                )
            lines.append(f"- PostgreSQL {server['release']}, {row['scenario']}: {figure}")
    return lines


def missing(results: dict[str, Any]) -> list[str]:
    found = []
    for server in results["servers"]:
        for part in ("update", "stream"):
            found += [(f"{server['release']} {part} {what}", error) for what, error in server[part]["errors"].items()]
        for snap in server["snapshot"]:
            found += [(f"{server['release']} snapshot {what}", error) for what, error in snap["errors"].items()]
        if server.get("verify", {}).get("ours_error"):
            found.append((f"{server['release']} verification", server["verify"]["ours_error"]))
    return [f"- {what}: our figure is missing: {error}" for what, error in found]


def details(server: dict[str, Any]) -> list[str]:
    upd, lag = server["update"], server["stream"]
    lines = [f"### PostgreSQL {server['release']}", "", f"- `{server['postgres']}`"]
    for snap in server["snapshot"]:
        lines.append(f"- Snapshot of {snap['rows']:,} rows, every round (median reported): `{_json(snap['samples'])}`")
    lines.append(
        f"- UPDATE: {upd['wal_bytes']:,} bytes of WAL; native {_s(upd['native_from_commit_s'])} from COMMIT;"
        f" ours catch-up `{_json(upd['catch_up'])}`; ours continuous `{_json(upd['continuous'])}`"
    )
    lines.append(f"- Stream: native load `{_json(lag['native_load'])}`, caught up `{_json(lag['native'])}`")
    for how, caught in lag["ours"].items():
        lines.append(f"- Stream, ours ({how}): load `{_json(lag['ours_load'][how])}`, caught up `{_json(caught)}`")
    lines.append("")
    return lines


def write(results: dict[str, Any], out: Path, readme: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    machine, load = results["machine"], results["load"]
    lines = [
        "# Benchmark results",
        "",
        f"Reproduce: `{results['command']}` from the repository root (writes this file and `results.json` next to it).",
        f"Run {results['started_at']} for {results['duration_s'] / 60:.1f} min on commit {results['commit']}.",
        "",
        "Every figure is measured in the same run on one machine, against baselines measured in that run: per",
        "PostgreSQL release a source and a sink cluster on loopback (the same settings for ours and for native).",
        "Native = a subscription with `streaming = on`. Ours is measured twice: the engine alone (`execute_run` in a",
        "child process) and through the service API (a connector and runs over HTTP, as a DAG would). Ratio = ours",
        "through the API / native (lower is better); the engine's own ratio is in brackets. Targets are issue 14's.",
        "",
    ]
    for server in results["servers"]:
        lines += [
            f"## PostgreSQL {server['release']}",
            "",
            "| scenario | native | ours: engine alone | ours: through the API | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
            *(
                "| "
                + " | ".join(row[key] for key in ("scenario", "native", "engine", "api", "ratio", "target", "met"))
                + " |"
                for row in rows_of(server)
            ),
            "",
        ]
    gaps = missing(results)
    if gaps:
        lines += ["## Missing figures", "", *gaps, ""]
    lines += ["## Details", ""]
    for server in results["servers"]:
        lines += details(server)
    settings = {server["release"]: server["settings"] for server in results["servers"]}
    lines += [
        "## Machine",
        "",
        f"- {machine['platform']}; {machine['cpu']}, {machine['cores']} cores; {machine['memory_gb']:.0f} GB RAM",
        f"- Python {machine['python']}; psycopg {machine['psycopg']}; engine hot path: {machine.get('hot_path', '?')}",
        f"- Server settings (source and sink clusters): `{json.dumps(settings)}`",
        f"- Load average (1 min) at start {load['start']:.2f}, end {load['end']:.2f}; per scenario"
        f" `{json.dumps(load['scenarios'])}`. {results['load_note']}",
        "",
    ]
    (out / "RESULTS.md").write_text("\n".join(lines) + ("\n" + NOTES.read_text() if NOTES.exists() else ""))
    if readme is not None:
        write_summary(results, readme)


def write_summary(results: dict[str, Any], readme: Path) -> None:
    """Replace README's bench summary (between its markers) with :func:`summary`."""
    text = readme.read_text()
    block = "\n".join([SUMMARY_START, *summary(results), SUMMARY_END])
    pattern = re.compile(re.escape(SUMMARY_START) + ".*?" + re.escape(SUMMARY_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no bench summary markers")
    readme.write_text(pattern.sub(lambda _: block, text))
