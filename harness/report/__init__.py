"""`dlm-bench-report <results folder>`: claims, environment, tables and plots from the parquet only.

Writes `<folder>/_report/`: `report.md` (PNG and SVG plots beside it), `report.html` (one
self-contained file, plots embedded), and the tables as CSV (`cells.csv`, `comparisons.csv`,
`claims.csv`, `environment.csv`, `crosscheck.csv`, and the sweep summary `summary.csv`), all views of
one aggregate (`harness.report.aggregate`). The claims table comes first, then the environment of
every run, then the details.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.config import ConfigError
from harness.records import PAIRING_KEYS
from harness.report.aggregate import DEFINITIONS, TPF_RULES, Aggregates, Bootstrap, Estimate, aggregate, plain_text
from harness.report.claims import (DEFAULT_CLAIMS, Claim, Verdict, conditions_text, evaluate_claims, load_claims,
                                   rule_description)
from harness.report.plots import Plot, draw_all
from harness.report.render import Block, Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from harness.store import atomic_write, read_results
from harness.summary import format_summary, summary_table

# Below this many parameters a model is "tiny": its forwards cost too little for their times to say
# anything about a production model's.
TINY_MODEL_PARAMETERS = 100_000_000

REPORT_DIR = "_report"  # underscore: ignored by pandas.read_parquet on the results folder


@dataclass
class Report:
    folder: Path  # where the report files are
    markdown: Path
    html: Path
    aggregates: Aggregates
    verdicts: list[Verdict]
    plots: list[Plot]
    summary: pd.DataFrame  # harness.summary.summary_table of the same aggregate (summary.csv)


def write_report(folder: str | Path, records: pd.DataFrame | None = None) -> Path:
    """The report of a sweep folder with the default claims; returns the Markdown file's path.
    `records` (the folder's, already read) saves reading every parquet file again."""
    return build_report(folder, records=records).markdown


def build_report(folder: str | Path, out: str | Path | None = None, claims: str | Path | list[Claim] = DEFAULT_CLAIMS,
                 boot: Bootstrap = Bootstrap(), baseline_model: str | None = "auto",
                 records: pd.DataFrame | None = None) -> Report:
    folder = Path(folder)
    out = Path(out) if out else folder / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    records = read_results(folder) if records is None else records
    if records.empty:
        raise ValueError(f"no parquet records under {folder} (a sweep folder holds one .parquet file per cell)")
    claim_list = claims if isinstance(claims, list) else load_claims(claims)
    ag = aggregate(records, boot, baseline_model)
    verdicts = evaluate_claims(claim_list, ag)
    plots = draw_all(ag, out)
    environment = environment_table(ag.prepared)

    summary = summary_table(ag.cells)
    write_csv(summary, out / "summary.csv")
    write_csv(ag.cells, out / "cells.csv")
    write_csv(ag.comparisons, out / "comparisons.csv")
    write_csv(ag.crosscheck, out / "crosscheck.csv")
    write_csv(claims_frame(verdicts), out / "claims.csv")
    write_csv(environment, out / "environment.csv")

    title = f"dlm-bench report: {folder.resolve().name}"
    blocks = [Heading(1, title), Paragraph(overview(folder, records, ag))]
    banner = timing_banner(ag)
    if banner:
        blocks.append(Paragraph(banner, banner=True))
    blocks += claims_section(verdicts)
    blocks += [Heading(2, "Environment of every run"),
               Paragraph("One row per distinct environment (software, hardware, host, commit); "
                         "every cell's own environment is in environment.csv and in its rows."),
               Table(environment_display(environment))]
    blocks += cells_section(ag)
    blocks += comparisons_section(ag)
    blocks += crosscheck_section(ag)
    blocks += plots_section(plots)
    blocks += not_run_section(ag)
    blocks += definitions_section(ag)
    markdown, html = out / "report.md", out / "report.html"
    write_text(to_markdown(blocks), markdown)
    write_text(to_html(blocks, title), html)
    return Report(out, markdown, html, ag, verdicts, plots, summary)


# Every report file is written whole or not at all (a full disk leaves the previous report, not a
# truncated one): a hidden temporary beside it, then a rename (harness.store.atomic_write).


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda handle: frame.to_csv(handle, index=False), mode="w")


def write_text(text: str, path: Path) -> None:
    atomic_write(path, lambda handle: handle.write(text), mode="w")


# --- formatting --------------------------------------------------------------------------------


def estimate(row: pd.Series, name: str) -> Estimate:
    if name not in row:
        return Estimate.missing()
    return Estimate(float(row[name]), float(row[f"{name}_lo"]), float(row[f"{name}_hi"]), 0)


def ci(row: pd.Series, name: str) -> str:
    return estimate(row, name).text()


def number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}"
    return str(value)


key_text = plain_text  # a key as a reader writes it: 32, not 32.0; "-" for none


IDENTITY = [("model", "model"), ("mode", "mode_label"), ("runner", "runner"), ("hardware", "hardware"),
            ("task", "task"), ("protocol", "task_protocol"), ("context", "context"), ("conc", "concurrency")]


def identity(row: pd.Series) -> dict[str, str]:
    """The columns that name a cell; `setting` holds any other on which the report's cells differ."""
    out = {title: key_text(row[column]) for title, column in IDENTITY}
    if row.get("distinct"):
        out["setting"] = row["distinct"]
    return out


def overview(folder: Path, records: pd.DataFrame, ag: Aggregates) -> str:
    counts = ag.cells["status"].value_counts().to_dict() if not ag.cells.empty else {}
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    baseline = (f"the ar cells of {ag.baseline_model}" if ag.baseline_model else "each model's own ar cells")
    intervals = (f"95% intervals: Wilson for accuracy, a Clopper-Pearson envelope for paired accuracy differences, "
                 f"percentile bootstrap over samples otherwise ({ag.boot.resamples} resamples, seed {ag.boot.seed})"
                 if ag.boot else "no intervals")
    return (f"{len(records)} records in {folder}; {len(ag.cells)} cells ({status}). {intervals}. Baseline: "
            f"{baseline}, agreeing with the cell on {', '.join(PAIRING_KEYS)}. Generated "
            f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.")


def timing_banner(ag: Aggregates) -> str:
    """A warning when the times come from a CPU or from a tiny model: they say nothing about a GPU."""
    rows = ag.prepared[(ag.prepared["status"] == "ok") & ag.prepared["e2e_s"].notna()]
    if rows.empty:
        rows = ag.prepared[(ag.prepared["status"] == "ok") & ag.prepared["forward_time_s"].notna()]
    if rows.empty:
        return ""
    on_cpu = rows[(rows["hardware"] == "cpu") | rows["hardware_detected"].astype(str).str.lower().isin(["cpu"])]
    params = pd.to_numeric(rows["model_parameters"], errors="coerce")
    tiny = rows[params < TINY_MODEL_PARAMETERS]
    reasons = []
    if len(on_cpu):
        reasons.append(f"{on_cpu['cell_id'].nunique()} cell(s) ran on a CPU")
    if len(tiny):
        sizes = ", ".join(f"{m} ({int(p):,} parameters)" for m, p in
                          sorted(set(zip(tiny["model"], pd.to_numeric(tiny["model_parameters"])))))
        reasons.append(f"{tiny['cell_id'].nunique()} cell(s) ran a tiny model: {sizes}")
    if not reasons:
        return ""
    return ("Timings here are not evidence about GPU speed: " + "; ".join(reasons) + ". Their latencies, "
            "throughputs, costs and roofline ratios describe this run only; TPF and accuracy are unaffected.")


# --- claims ------------------------------------------------------------------------------------


def claims_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim": v.claim.id, "statement": v.claim.statement, "verdict": v.verdict, "measured [95% CI]": v.measured_text(),
        "claimed": v.claim.target_text(), "metric": f"{v.claim.metric} ({v.claim.comparison})",
        "tasks needed": ", ".join(v.claim.tasks), "tasks measured": ", ".join(v.tasks_present) or "none",
        "min samples": v.claim.min_samples,
        "rules reproducing the claimed figure": v.reproducing_text(),
        "why": v.reason,
    } for v in verdicts])


def claims_section(verdicts: list[Verdict]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Claims"), Paragraph(
        "Each vendor claim, judged from these records on the tasks it names: confirmed or refuted when every "
        "measurement's 95% interval lies on one side of the claimed value less its tolerance (or inside / outside "
        "its band); inconclusive when an interval straddles the bound or measurements disagree; insufficient "
        "evidence when a measurement has fewer paired samples than the claim needs or a degenerate interval; not "
        "measured when a condition or a task the claim needs is missing from the records."),
        Table(claims_frame(verdicts).drop(columns=["statement"]))]
    for v in verdicts:
        c = v.claim
        blocks += [Heading(3, f"{c.id}: {v.verdict}"), Paragraph(c.statement)]
        items = [f"metric: {c.metric} ({rule_description(c.metric)}), {c.comparison} of subject to baseline; "
                 f"claimed {c.target_text()}",
                 f"subject: {conditions_text(c.subject)}", f"baseline: {conditions_text(c.baseline)}",
                 f"both sides: {conditions_text(c.require)}; tasks: {', '.join(c.tasks)} (present: "
                 f"{', '.join(v.tasks_present) or 'none'}; missing: {', '.join(v.tasks_missing) or 'none'}); at least "
                 f"{c.min_samples} paired samples per measurement; compared cell by cell with the baseline cell that "
                 f"agrees on every pairing column"]
        if c.source:
            items.append(f"source: {c.source}")
        blocks += [Bullets(tuple(items)), Paragraph(f"Verdict: {v.verdict}: {v.reason}.")]
        if v.measurements:
            blocks.append(Table(pd.DataFrame([{
                "where": m.where, "subject": m.subject, "baseline": m.baseline,
                "measured [95% CI]": m.estimate.text(), "n": m.estimate.n, "interval": m.estimate.method,
                "verdict": m.verdict, "why": m.reason,
            } for m in v.measurements])))
        if c.evidence_metrics:
            rows = []
            for m in v.measurements:
                for rule, est in m.rules.items():
                    own = m.subject_figures.get(rule)
                    rows.append({"where": m.where, "counting rule": rule, "meaning": rule_description(rule),
                                 "subject's own figure": own.text() if own else "-",
                                 "vs baseline [95% CI]": est.text(),
                                 "reproduces the claimed figure": "yes" if c.reproduces(est.value) else "no"})
            if rows:
                blocks += [Paragraph(f"Counting rules (a rule reproduces the claimed {c.claimed:g} in a measurement when "
                                     f"its value there is within {c.tolerance:g} of it): {v.reproducing_text()}."),
                           Table(pd.DataFrame(rows))]
        notes = [f"{m.where}: {n}" for m in v.measurements for n in m.notes]
        if notes:
            blocks.append(Bullets(tuple(notes)))
        if c.note:
            blocks.append(Paragraph(f"Note: {c.note}"))
    return blocks


# --- environment -------------------------------------------------------------------------------

ENVIRONMENT_COLUMNS = ["sweep", "runner", "hardware", "hardware_detected", "env_gpu_name", "env_driver", "env_cuda",
                       "env_torch", "env_transformers", "env_vllm", "env_sglang", "engine_version", "env_python",
                       "env_git_sha", "env_git_dirty", "env_host", "env_cpu", "env_platform", "timing_method",
                       "gpu_power_limit_w", "hw_price_per_gpu_hour", "hw_gpus"]


def environment_table(prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: what it ran on and with what software."""
    if prepared.empty:
        return pd.DataFrame()
    columns = [c for c in ENVIRONMENT_COLUMNS if c in prepared]
    rows = []
    for cell_id, group in prepared.groupby("cell_id", sort=True):
        first = group.iloc[0]
        row = {"cell_id": cell_id, "model": first["model"], "mode": first["mode_label"],
               **{c: key_text(first[c]) for c in columns}}
        started = group["started_at"].min()
        row["started_at"] = f"{started:%Y-%m-%d %H:%M:%S}" if pd.notna(started) else "-"
        for column in ("gpu_sm_clock_mean_mhz", "gpu_power_draw_mean_w"):
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[column] = number(float(values.median())) if len(values) else "-"
        throttles = sorted({str(t) for t in group["gpu_throttle_reasons"].dropna() if str(t) not in ("", "[]", "0")})
        row["gpu_throttle_reasons"] = "; ".join(throttles) or "-"
        rows.append(row)
    return pd.DataFrame(rows)


def environment_display(environment: pd.DataFrame) -> pd.DataFrame:
    if environment.empty:
        return environment
    env = environment.copy()
    env["env_git_sha"] = env["env_git_sha"].map(lambda s: s[:10] if isinstance(s, str) else s)
    varying_cell = ["cell_id", "model", "mode", "started_at", "gpu_sm_clock_mean_mhz", "gpu_power_draw_mean_w"]
    keys = [c for c in env.columns if c not in varying_cell]
    rows = []
    for _, group in env.groupby(keys, sort=False, dropna=False):
        first = group.iloc[0]
        row = {k: first[k] for k in keys}
        row["cells"] = len(group)
        row["models / modes"] = ", ".join(sorted({f"{m} {d}" for m, d in zip(group["model"], group["mode"])}))
        row["started"] = f"{group['started_at'].min()} .. {group['started_at'].max()}"
        for column in ("gpu_sm_clock_mean_mhz", "gpu_power_draw_mean_w"):
            values = [v for v in group[column] if v != "-"]
            row[column] = ", ".join(sorted(set(values))) or "-"
        rows.append(row)
    frame = pd.DataFrame(rows)
    # Columns no run filled in (an engine's version on a reference-only sweep) say nothing.
    return frame[[c for c in frame.columns if not (frame[c].astype(str) == "-").all()]]


# --- cells and comparisons ---------------------------------------------------------------------


def ran(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["status"].isin(["ok", "error"]) & (cells["samples"] > 0)].sort_values(
        ["model", "mode", "block_length", "threshold", "runner", "hardware", "task", "context", "concurrency"])


def any_finite(cells: pd.DataFrame, names: list[str]) -> bool:
    return bool(np.isfinite(cells[names].to_numpy(dtype=float)).any())


def headline_table(ag: Aggregates) -> pd.DataFrame:
    """One line per cell that ran: accuracy, TPF, throughput and the comparison with its baseline."""
    cells = ran(ag.cells)
    comp = ag.comparisons.set_index("cell_id") if not ag.comparisons.empty else pd.DataFrame()

    def compared(cell_id, name):
        if comp.empty or cell_id not in comp.index:
            return "-"
        return estimate(comp.loc[cell_id], name).text()

    return pd.DataFrame([{
        **identity(r), "n": r["samples"], "acc %": ci(r, "acc"), "TPF": ci(r, "tpf"), "tok/s sys": ci(r, "tok_s_system"),
        "speedup": compared(r["cell_id"], "speedup"), "dacc (pts)": compared(r["cell_id"], "dacc"),
        "timing only": "yes" if r["timing_only"] else "",
    } for _, r in cells.iterrows()])


def cells_section(ag: Aggregates) -> list[Block]:
    cells = ran(ag.cells)
    blocks: list[Block] = [Heading(2, "Results per cell")]
    if cells.empty:
        return blocks + [Paragraph("No cell produced samples.")]
    blocks += [Heading(3, "Headline"), Paragraph(
        "acc: % correct; TPF: new tokens / forwards (prefill included); tok/s sys: system output throughput; "
        "speedup: ratio of median per-request tok/s against the baseline; dacc: paired accuracy difference in "
        "points against the baseline. [lo, hi]: 95% bootstrap interval."), Table(headline_table(ag))]

    blocks += [Heading(3, "Tokens per forward under each counting rule"), Paragraph(
        "TPF: ours, prefill included; TPF-np: without the prefill; vTPF: the vendor's nfe rule for the mode on our "
        "trimmed tokens; vTPF-u: the vendor's printed figure (untrimmed tokens / vendor nfe); acc_len: tokens per "
        "verify step; q/fwd: query tokens per forward.")]
    blocks.append(Table(pd.DataFrame([{
        **identity(r), "TPF": ci(r, "tpf"), "TPF-np": ci(r, "tpf_excl_prefill"), "vTPF": ci(r, "vendor_tpf"),
        "vTPF-u": ci(r, "vendor_tpf_untrimmed"), "acc_len": ci(r, "accept_length"),
        "q/fwd": ci(r, "query_tokens_per_forward"),
    } for _, r in cells.iterrows()])))

    blocks += [Heading(3, "Throughput and latency"), Paragraph(
        "tok/s req: median per-request output rate; tok/s sys: system output throughput (a batched row holds 1/B of "
        "the GPUs); ms/fwd: median time of a forward after the prefill; latency percentiles in ms over samples "
        "(per-sample medians over repetitions). Beside every time, its roofline floor in ms (the least time the "
        "hardware profile allows for the same forwards: bytes to move / bandwidth, or FLOPs / peak rate) and "
        "x floor, the median over samples of time / floor; '-' where the rows lack the model's shape, the "
        "profile's figures or per-forward shapes (engines).")]
    latency_rows = []
    show_itl = any_finite(cells, ["itl_p50"])
    for _, r in cells.iterrows():
        row = {**identity(r), "tok/s req": ci(r, "tok_s_request"), "tok/s sys": ci(r, "tok_s_system"),
               "ms/fwd": ci(r, "ms_per_forward"), "ms/fwd floor": ci(r, "ms_per_forward_floor"),
               "ms/fwd x floor": ci(r, "ms_per_forward_x_floor")}
        for short in ("ttft", "tpot", "e2e"):
            for q in (50, 90, 99):
                row[f"{short.upper()} p{q}"] = ci(r, f"{short}_p{q}")
            row[f"{short.upper()} floor"] = ci(r, f"{short}_floor")
            row[f"{short.upper()} x floor"] = ci(r, f"{short}_x_floor")
        if show_itl:
            for q in (50, 90, 99):
                row[f"ITL p{q}"] = ci(r, f"itl_p{q}")
        latency_rows.append(row)
    blocks.append(Table(pd.DataFrame(latency_rows)))

    blocks.append(Heading(3, "Energy and cost"))
    if any_finite(cells, ["joules_per_token", "usd_per_mtok"]):
        blocks.append(Table(pd.DataFrame([{
            **identity(r), "J/tok": ci(r, "joules_per_token"), "$/1M tok": ci(r, "usd_per_mtok"),
            "roofline ratio": ci(r, "roofline_ratio"),
        } for _, r in cells.iterrows()])))
    else:
        blocks.append(Paragraph("No row carries an energy reading (gpu_energy_j, from NVML on GPUs) or a price per "
                                "GPU-hour (hw_price_per_gpu_hour): energy and cost are not reported."))
    return blocks


def comparisons_section(ag: Aggregates) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Against the baseline")]
    comp = ag.comparisons
    if comp.empty:
        return blocks + [Paragraph("No cell has a baseline cell (mode ar) agreeing with it on every pairing "
                                   f"column ({', '.join(PAIRING_KEYS)}).")]
    blocks.append(Paragraph(
        "TPF ratio: TPF of the cell / of the baseline; speedup: ratio of median per-request tok/s; E2E speedup: "
        "median E2E of the baseline / of the cell; sys ratio: system tok/s ratio; dacc: paired accuracy difference "
        "(points) on the samples both scored (Clopper-Pearson envelope) with McNemar's exact p-value; then the "
        "discordant pairs and the samples with identical outputs."))
    comp = comp.sort_values(["model", "mode", "block_length", "runner", "hardware", "task", "context", "concurrency"])
    blocks.append(Table(pd.DataFrame([{
        **identity(r), "baseline": r["baseline"], "TPF ratio": ci(r, "tpf_ratio"), "speedup": ci(r, "speedup"),
        "E2E speedup": ci(r, "e2e_speedup"), "sys ratio": ci(r, "sys_ratio"), "dacc (pts)": ci(r, "dacc"),
        "McNemar p": number(r["dacc_p_value"]),
        "pairs": r["pairs"], "only cell right": r["only_cell_right"], "only baseline right": r["only_baseline_right"],
        "identical outputs": f"{r['identical_outputs']}/{r['shared_samples']}",
    } for _, r in comp.iterrows()])))
    return blocks


def crosscheck_section(ag: Aggregates) -> list[Block]:
    table = ag.crosscheck
    if table.empty:
        return []
    blocks: list[Block] = [Heading(2, "Engines against the reference decoders"), Paragraph(
        "Each engine cell against the reference cell of the same sweep, model, mode, block length, threshold, "
        "temperature, task, context and generation limit (harness/crosscheck.py): the engine's tokens per forward "
        "(from its counters) against the reference's sum(new tokens) / sum(forwards after the prefill), and the "
        "acceptance lengths; computed from the records each time the report is built.")]
    shown = table.assign(**{c: table[c].map(number) for c in ("engine_tpf", "reference_tpf", "tpf_rel_diff",
                                                              "engine_accept_length", "reference_accept_length",
                                                              "accept_rel_diff")})
    return blocks + [Table(shown[["runner", "model", "mode", "block_length", "task", "context", "concurrency",
                                  "engine_tpf", "reference_tpf", "tpf_rel_diff", "engine_accept_length",
                                  "reference_accept_length", "accept_rel_diff", "flag"]].map(key_text))]


def plots_section(plots: list[Plot]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Plots")]
    for plot in plots:
        blocks += [Heading(3, plot.title), Figure(plot)]
    return blocks


def not_run_section(ag: Aggregates) -> list[Block]:
    cells = ag.cells[ag.cells["status"].isin(["skipped", "failed"]) | (ag.cells["errors"] > 0)]
    blocks: list[Block] = [Heading(2, "Skipped and failed cells")]
    if cells.empty:
        return blocks + [Paragraph("None: every cell ran and every sample completed.")]
    return blocks + [Table(pd.DataFrame([{
        **identity(r), "status": r["status"], "failed samples": r["errors"],
        "reason": (r["note"].strip().splitlines() or [""])[-1],
    } for _, r in cells.iterrows()]))]


def definitions_section(ag: Aggregates) -> list[Block]:
    items = [f"{name}: {rule}" for name, rule in DEFINITIONS.items()]
    items += [f"counting rule {name}: {rule}" for name, rule in TPF_RULES.items()]
    vendor_rules = sorted({r for r in ag.prepared.get("vendor_nfe_rule", pd.Series(dtype=object)).dropna()})
    items += [f"vendor nfe, {rule}" for rule in vendor_rules]
    return [Heading(2, "How every number is counted"),
            Paragraph("Repetitions are collapsed per sample first (counts averaged over repetitions, latencies by "
                      "their median), so every sample weighs the same; ratios are ratios of sums over samples. "
                      "Timing-only rows (random weights) have no meaningful TPF or accuracy and never count "
                      "towards a claim."),
            Bullets(tuple(items))]


# --- the command -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlm-bench-report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a sweep folder, e.g. results/embedded")
    parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="claims file (default: %(default)s)")
    parser.add_argument("--baseline-model", default="auto",
                        help="model whose ar cells are the baseline: auto (qwen3-8b when present, else each model's own ar), own, or a model name")
    parser.add_argument("--resamples", type=int, default=Bootstrap.resamples, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=Bootstrap.seed, help="bootstrap seed")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: <results>/{REPORT_DIR})")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"dlm-bench-report: {args.results} is not a folder", file=sys.stderr)
        return 2
    try:
        boot = Bootstrap(resamples=args.resamples, seed=args.seed)
        report = build_report(args.results, args.out, args.claims, boot,
                              None if args.baseline_model == "own" else args.baseline_model)
    except (ConfigError, ValueError) as exc:
        print(f"dlm-bench-report: {exc}", file=sys.stderr)
        return 2
    print(format_summary(report.summary))
    print("\nClaims:")
    for v in report.verdicts:
        print(f"  {v.claim.id}: {v.verdict.upper()}: {v.reason}")
    skipped = [p for p in report.plots if p.skipped]
    if skipped:
        print("\nPlots not drawn:")
        for p in skipped:
            print(f"  {p.name}: {p.skipped}")
    print(f"\nreport: {report.markdown}\n        {report.html}")
    return 0
