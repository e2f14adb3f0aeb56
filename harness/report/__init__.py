"""`dlm-bench-report <results folder>`: tables and plots from the parquet records only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless nodes
import matplotlib.pyplot as plt  # noqa: E402

from harness.metrics import DEFINITIONS, summarize  # noqa: E402
from harness.store import read_results  # noqa: E402
from harness.summary import format_summary  # noqa: E402

REPORT_DIR = "_report"  # underscore: ignored by pandas.read_parquet on the results folder


def write_report(folder: str | Path) -> Path:
    folder = Path(folder)
    out = folder / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    records = read_results(folder)
    summary = summarize(records)
    summary.to_csv(out / "summary.csv", index=False)
    plots = [plot_tpf_by_mode(summary, out)] if not summary.empty else []
    lines = [f"# dlm-bench report: {folder.name}", "", f"{len(records)} records, {len(summary)} cells.", "",
             "```", format_summary(summary), "```", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots if p is not None]
    lines += ["", "## Definitions", ""] + [f"- **{k}**: {v}" for k, v in DEFINITIONS.items()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_tpf_by_mode(summary, out: Path) -> Path | None:
    ok = summary[(summary["status"] == "ok") & summary["TPF"].notna()]
    if ok.empty:
        return None
    labels = [f"{r.mode}\n{r.task}/{r.context}" for r in ok.itertuples()]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(ok)), 4))
    ax.bar(range(len(ok)), ok["TPF"])
    ax.set_xticks(range(len(ok)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("tokens per forward (prefill included)")
    ax.set_title("TPF by mode: sum(new tokens) / sum(forwards)")
    fig.tight_layout()
    path = out / "tpf_by_mode.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlm-bench-report", description=__doc__)
    parser.add_argument("results", type=Path, help="a sweep folder, e.g. results/embedded")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"dlm-bench-report: {args.results} is not a folder", file=sys.stderr)
        return 2
    path = write_report(args.results)
    print(format_summary(summarize(read_results(args.results))))
    print(f"\nreport: {path}")
    return 0
