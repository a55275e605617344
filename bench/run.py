"""`python -m bench` (or `make bench`): run the benchmarks, print a table, write docs/benchmarks.md.

Each figure is the median of several runs, next to a raw baseline measured in the same run on the
same machine, and their ratio. Nothing fails on a slow machine: a goal that is not met is reported,
and the command still exits 0 (it exits 1 only when a benchmark could not run at all).

    python -m bench                      # everything, 3 runs each (~17 min on 2 cores; session start-up takes longest)
    python -m bench --quick              # smaller and shorter, 1 run: a smoke test of the whole harness
    python -m bench --only ingest,persister --runs 5
    python -m bench --mongodb-url mongodb://127.0.0.1:27017   # on a real MongoDB instead of SecantusDB
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from pymongo.errors import PyMongoError

from fleet_devtools.localdev import port_open

from . import e2e, gateway, history, ingest, media, persister, sessions, webhooks
from .common import Context, Row, database_version, load_average, machine_info, wait_for_low_load

BENCHMARKS = {
    "ingest": ingest,
    "persister": persister,
    "e2e": e2e,
    "gateway": gateway,
    "sessions": sessions,
    "media": media,
    "history": history,
    "webhooks": webhooks,
}
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller, shorter, 1 run (a smoke test, not figures to quote)")
    p.add_argument("--runs", type=int, help="runs per benchmark (default 3; 1 with --quick)")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, default=DOC, help="the Markdown report (default docs/benchmarks.md)")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--json", type=Path, help="also write every sample as JSON here")
    p.add_argument("--max-load", type=float, default=1.5,
                   help="wait (at most --load-wait seconds) until the 1-minute load average is below this")
    p.add_argument("--load-wait", type=float, default=120.0, help="longest wait for a quiet machine (default 120 s)")
    p.add_argument("--keep-logs", action="store_true", help="keep the services' logs (always kept after a failure)")
    p.add_argument("--mongodb-url", help="measure on this MongoDB server instead of an embedded SecantusDB per benchmark "
                   "(each run in databases of its own, dropped afterwards)")
    return p.parse_args(argv)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "B":
        return f"{value:,.0f} B"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def ratio_text(row: Row) -> str:
    r = row.ratio
    if r is None:
        return "—"
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


def met_text(row: Row) -> str:
    return {True: "yes", False: "**no**", None: "—"}[row.met]


def samples_text(values: list[float | None], unit: str) -> str:
    return ", ".join(fmt(v, "").strip() for v in values) if values else ""


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | figure | waha-fleet | baseline | ratio | goal | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.bench} | {row.metric} | {fmt(row.value, row.unit)} | {fmt(row.baseline_value, row.unit)} | "
            f"{ratio_text(row)} | {row.goal or '—'} | {met_text(row)} |"
        )
    return "\n".join(lines)


def details(rows: list[Row]) -> str:
    lines = ["| figure | waha-fleet, each run | baseline, each run | baseline is | note |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row.bench}: {row.metric} | {samples_text(row.samples, row.unit)} | "
            f"{samples_text(row.baseline_samples, row.unit)} | {row.baseline} | {row.note} |"
        )
    return "\n".join(lines)


def console_table(rows: list[Row]) -> str:
    header = ("benchmark", "figure", "waha-fleet", "baseline", "ratio", "goal", "met")
    data = [(r.bench, r.metric, fmt(r.value, r.unit), fmt(r.baseline_value, r.unit), ratio_text(r), r.goal or "—",
             met_text(r).strip("*")) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *data, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in data]
    return "\n".join(out)


def results_section(rows: list[Row], info: dict, meta: dict) -> str:
    machine = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("cpu", "cores", "memory_gib"))
    return "\n".join([
        START,
        f"Run of {meta['date']} ({'`--quick`' if meta['quick'] else 'full'}, median of {meta['runs']} "
        f"run{'s' if meta['runs'] != 1 else ''} each, {meta['minutes']:.1f} min in all) on "
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {machine}. "
        f"Load average (1 min) {meta['load_before']:.2f} at the start, {meta['load_after']:.2f} at the end"
        f"{' (the machine was shared with other work: figures move)' if max(meta['load_before'], meta['load_after']) > 1.0 else ''}.",
        "",
        "Ratio = waha-fleet ÷ baseline: for rates, higher is better; for times and latencies, lower is.",
        "",
        table(rows),
        "",
        "<details><summary>Every run</summary>",
        "",
        details(rows),
        "",
        "</details>",
        END,
    ])


TEMPLATE = """# Benchmarks

`make bench` (or `uv run python -m bench`; `--quick` for a short smoke run) runs every benchmark
and rewrites the results below. Each figure is the median of several runs next to a raw baseline
measured in the same run on the same machine; absolute figures move from machine to machine, the
ratios much less. These are benchmarks, not tests: nothing fails on a slow machine.

{results}
"""


def write_doc(path: Path, section: str) -> None:
    if path.exists() and START in (text := path.read_text()) and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + section + after)
    else:
        path.write_text(TEMPLATE.format(results=section))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rabbitmq_url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not port_open("127.0.0.1", 5672) and "127.0.0.1" in rabbitmq_url:
        print(f"RabbitMQ does not answer at {rabbitmq_url} (make broker starts one)", file=sys.stderr)
        return 2
    mongodb_version = None
    if args.mongodb_url:
        try:
            mongodb_version = asyncio.run(database_version(args.mongodb_url))
        except (PyMongoError, ValueError) as exc:  # ValueError: a URL PyMongo cannot parse
            print(f"no MongoDB at {args.mongodb_url}: {exc}", file=sys.stderr)
            return 2
    runs = args.runs or (1 if args.quick else 3)
    log_dir = Path(tempfile.mkdtemp(prefix="waha-fleet-bench-"))
    ctx = Context(rabbitmq_url=rabbitmq_url, log_dir=log_dir, quick=args.quick, runs=runs,
                  say=lambda text: print(text, flush=True), mongodb_url=args.mongodb_url)
    load_before = wait_for_low_load(ctx.say, args.max_load, args.load_wait)
    info = machine_info(rabbitmq_url, mongodb_version)
    print(f"benchmarks: {', '.join(names)}; {runs} run(s) each{' (quick)' if args.quick else ''}; "
          f"load average {load_before[0]:.2f}; logs in {log_dir}", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            rows += BENCHMARKS[name].run(ctx)
        except Exception as exc:  # one benchmark failing must not lose the others' figures
            traceback.print_exc()
            failed.append(name)
            rows.append(Row(BENCHMARKS[name].__name__.split(".")[-1], f"did not run: {exc!r}"[:200], "", []))
        print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "runs": runs,
        "minutes": (time.monotonic() - started) / 60,
        "load_before": load_before[0],
        "load_after": load_average()[0],
    }
    print()
    print(console_table(rows))
    if not args.no_write:
        write_doc(args.out, results_section(rows, info, meta))
        print(f"\nwritten: {args.out}")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "machine": info, "rows": [r.as_dict() for r in rows]}, indent=2))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}; logs kept in {log_dir}", file=sys.stderr)
        return 1
    if not args.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0
