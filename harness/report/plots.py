"""The report's plots (matplotlib, PNG and SVG), each from the aggregates alone.

Every plot function returns a Figure, or a string saying why its data is absent; `draw_all`
saves what was drawn and lists what was skipped, so a missing column never stops a report.
Error bars are the 95% bootstrap intervals of `harness.report.aggregate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.records import CELL_IDENTITY
from harness.store import atomic_write
from harness.report.aggregate import Aggregates

# Figures are built without pyplot: no global backend is chosen or changed, so the report runs on
# headless nodes and inside a notebook alike, and nothing needs closing.
PALETTE = matplotlib.colormaps["tab10"].colors


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str  # how the plotted numbers are counted
    png: Path | None = None
    svg: Path | None = None
    skipped: str = ""  # why the plot was not drawn


@dataclass(frozen=True)
class PlotSpec:
    name: str
    title: str
    caption: str
    draw: Callable[[Aggregates], "Figure | str"]


def draw_all(ag: Aggregates, out: Path) -> list[Plot]:
    plots = []
    for spec in PLOTS:
        try:
            result = spec.draw(ag)
        except Exception as exc:  # a plot bug must not cost the rest of the report
            result = f"plot failed: {type(exc).__name__}: {exc}"
        png, svg = out / f"{spec.name}.png", out / f"{spec.name}.svg"
        if isinstance(result, str):
            png.unlink(missing_ok=True)  # a plot drawn by an earlier report of this folder is stale now
            svg.unlink(missing_ok=True)
            plots.append(Plot(spec.name, spec.title, spec.caption, skipped=result))
            continue
        # Each plot sized its margins to its text (`fit`), so each file is drawn once; text stays text
        # in the SVG: selectable, and cheaper to write than glyph paths.
        # Written whole or not at all, as every report file (harness.store.atomic_write).
        atomic_write(png, lambda handle: result.savefig(handle, format="png", dpi=100))
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            atomic_write(svg, lambda handle: result.savefig(handle, format="svg"))
        plots.append(Plot(spec.name, spec.title, spec.caption, png, svg))
    return plots


# --- helpers -----------------------------------------------------------------------------------


def measured(cells: pd.DataFrame, *figures: str) -> pd.DataFrame:
    """Cells that ran and have a finite value for at least one of the figures."""
    ok = cells[cells["status"].isin(["ok", "error"])]
    return ok[np.isfinite(ok[list(figures)].to_numpy(dtype=float)).any(axis=1)]


# Columns that tell cells apart in a label or a series (the rest of a cell's description follows from these).
_NOT_DISTINCTIVE = ("model_source", "model_family", "model_parameters", "model_weight_bytes", "draft_adapter_active",
                    "hardware_detected", "hardware_mismatch_allowed", "context_tokens", "dataset_source")


def description_keys(frame: pd.DataFrame) -> list[str]:
    return [k for k in CELL_IDENTITY if k in frame and k not in _NOT_DISTINCTIVE]


def varying(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return [k for k in keys if frame[k].astype(str).nunique() > 1]


def series_groups(cells: pd.DataFrame, exclude: tuple[str, ...]):
    """Cells grouped into plot series: same description except the `exclude` columns (the x axis)."""
    keys = [k for k in description_keys(cells) if k not in exclude and k != "batch_size"]
    return list(cells.groupby(cells[keys].astype(str).apply(tuple, axis=1), sort=True)) if keys else [((), cells)]


def cell_labels(frame: pd.DataFrame, always: tuple[str, ...] = ("model", "mode")) -> list[str]:
    """Short labels naming what tells the cells apart (the model, the mode and any other column that varies)."""
    keys = [k for k in description_keys(frame) if k in always or k in varying(frame, description_keys(frame))]
    labels = []
    for _, row in frame.iterrows():
        parts = [str(row["model"])] if "model" in keys else []
        parts.append(row["mode_label"])
        for key in keys:
            if key in ("model", "mode", "block_length", "threshold", "steps", "draft_lora", "batch_size"):
                continue
            value = row[key]
            if key == "concurrency":
                parts.append(f"c={int(value)}")
            elif key in ("hardware", "context", "task", "runner"):
                parts.append(str(value))
            else:
                parts.append(f"{key}={value}")
        labels.append(" ".join(parts))
    return labels


def place_labels(ax, points: list[tuple[float, float]], names: list[str], fontsize: float = 6) -> list[str]:
    """Label each point where the label overlaps no label placed before it (tried at growing offsets
    around the point); returns the names that found no free place. Call after the layout is final."""
    renderer = ax.figure.canvas.get_renderer()
    inside = ax.figure.bbox
    offsets = [(4, 4), (4, -10), (-4, 4), (-4, -10), (4, 16), (4, -22), (-4, 16), (-4, -22), (12, 28), (12, -34),
               (-12, 28), (-12, -34)]
    placed, unplaced = [], []
    for (x, y), name in zip(points, names):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        if len(placed) >= 40:  # a crowded panel: the rest are listed, not squeezed in
            unplaced.append(name)
            continue
        for dx, dy in offsets:
            text = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               ha="left" if dx >= 0 else "right")
            box = text.get_window_extent(renderer)
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if within and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            text.remove()
        else:
            unplaced.append(name)
    return unplaced


def yerr(frame: pd.DataFrame, figure: str) -> np.ndarray:
    value, low, high = (frame[figure].to_numpy(float), frame[f"{figure}_lo"].to_numpy(float),
                        frame[f"{figure}_hi"].to_numpy(float))
    return np.nan_to_num(np.vstack([value - low, high - value]), nan=0.0).clip(min=0)


def log_axis(ax, which: str) -> None:
    """A log scale labelled 1, 2, 5 x each decade in plain numbers: readable over less than a decade
    (where the default labels only the one power of ten, or every minor tick on top of each other)."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def colors_for(labels: list[str]) -> dict[str, tuple]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(labels))}


# --- the plots ---------------------------------------------------------------------------------


def plot_concurrency(ag: Aggregates):
    cells = measured(ag.cells, "tpf", "tok_s_system")
    if cells.empty:
        return "no measured cells"
    if cells["concurrency"].nunique() < 2:
        return (f"only concurrency {int(cells['concurrency'].iloc[0])} was measured; an engine sweep over "
                "concurrency shows TPF, throughput and the cost of a forward diverge")
    groups = series_groups(cells, ("concurrency",))
    legend_rows = int(np.ceil(len(groups) / 3))
    height = 4.6 + 0.2 * legend_rows
    fig = Figure(figsize=(15, height))
    axes = fig.subplots(1, 3)
    names = cell_labels(pd.DataFrame([g.iloc[0] for _, g in groups])) if groups else []
    colors = colors_for(names)
    for (_, group), name in zip(groups, names):
        group = group.sort_values("concurrency")
        x = group["concurrency"].to_numpy(float)
        style = dict(marker="o", capsize=3, color=colors[name], label=name,
                     linestyle="--" if group["mode"].iloc[0] == "ar" else "-")
        axes[0].errorbar(x, group["tpf"], yerr=yerr(group, "tpf"), **style)
        axes[1].errorbar(x, group["tok_s_system"], yerr=yerr(group, "tok_s_system"), **style)
        axes[2].errorbar(x, group["ms_per_forward"], yerr=yerr(group, "ms_per_forward"), **style)
    titles = ["tokens per forward (prefill included)", "system output tokens/s", "ms per forward after prefill"]
    units = ["TPF (tokens / forward)", "throughput (tokens / s)", "time per forward (ms)"]
    for ax, title, unit in zip(axes, titles, units):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    log_axis(axes[2], "y")
    fig.suptitle("TPF vs throughput vs cost of a forward, by concurrency (per mode and block length)")
    fit(fig)
    fig.subplots_adjust(bottom=(0.75 + 0.2 * legend_rows) / height)  # the legend goes under the panels
    handles, legend_labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    return fig


RULE_BARS = [("tpf", "TPF (prefill incl.)"), ("tpf_excl_prefill", "TPF excl. prefill"),
             ("vendor_tpf", "vendor nfe rule"), ("vendor_tpf_untrimmed", "vendor as printed (untrimmed)")]


def plot_tpf_by_mode(ag: Aggregates):
    cells = measured(ag.cells, "tpf")
    if cells.empty:
        return "no cell has forward counts (engine rows without per-request counts, or timing-only rows)"
    cells = cells.sort_values(["model", "mode", "block_length", "threshold", "task", "context", "concurrency"])
    names = cell_labels(cells)
    y = np.arange(len(cells))
    height = 0.8 / len(RULE_BARS)
    fig = Figure(figsize=(10, row_height(1.6 * len(cells))))
    ax = fig.subplots()
    # Dots with their intervals, one row of four per cell: as many artists for 256 cells as for 2.
    for i, (figure, rule) in enumerate(RULE_BARS):
        ax.errorbar(cells[figure], y + (i - 1.5) * height, xerr=yerr(cells, figure), capsize=2, marker="o",
                    markersize=3, linestyle="none", label=rule, color=PALETTE[i])
    ax.set_yticks(y, names, fontsize=label_size(len(names)))
    ax.invert_yaxis()
    ax.set_ylabel("cell")
    ax.set_xlabel("TPF (tokens / forward)")
    ax.axvline(1, color="grey", linewidth=0.8)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("TPF by mode under each counting rule (ratio of sums over samples, 95% CI)")
    fit(fig)
    return fig


def plot_throughput_vs_context(ag: Aggregates):
    cells = measured(ag.cells, "tok_s_system")
    if cells.empty:
        return "no cell has a throughput"
    if cells["prompt_tokens"].nunique() < 2:
        return "only one context length was measured"
    hardware = sorted(cells["hardware"].astype(str).unique())
    fig = Figure(figsize=(6 * len(hardware), 4.4))
    axes = fig.subplots(1, len(hardware), squeeze=False)
    for ax, hw in zip(axes[0], hardware):
        sub = cells[cells["hardware"].astype(str) == hw]
        groups = series_groups(sub, ("context", "context_tokens", "hardware"))
        names = cell_labels(pd.DataFrame([g.iloc[0] for _, g in groups]))
        colors = colors_for(names)
        for (_, group), name in zip(groups, names):
            group = group.sort_values("prompt_tokens")
            ax.errorbar(group["prompt_tokens"], group["tok_s_system"], yerr=yerr(group, "tok_s_system"),
                        marker="o", capsize=3, color=colors[name], label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("prompt length (tokens, median per cell)")
        ax.set_ylabel("system throughput (output tokens / s)")
        ax.set_title(f"hardware: {hw}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Throughput vs context length, per hardware and mode (95% CI)")
    fit(fig)
    return fig


def plot_speedup(ag: Aggregates):
    comp = ag.comparisons
    if comp.empty:
        return "no cell has a baseline cell (mode ar) on the same sweep, hardware, runner, task, context and concurrency"
    comp = comp.sort_values(["model", "mode", "block_length", "task", "context", "concurrency"])
    names = [f"{n}  vs {b}" for n, b in zip(cell_labels(comp), comp["baseline"])]
    y = np.arange(len(comp))
    fig = Figure(figsize=(13, row_height(len(comp))))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, figure, title in ((axes[0], "speedup", "speedup: per-request tok/s, ratio of medians"),
                              (axes[1], "tpf_ratio", "TPF ratio (prefill included)")):
        ax.set_xlabel(f"{figure.replace('_', ' ')} (x, cell / baseline)")
        values = comp[figure].to_numpy(float)
        colors = ["tab:green" if v >= 1 else "tab:red" for v in np.nan_to_num(values, nan=1)]
        ax.errorbar(values, y, xerr=yerr(comp, figure), capsize=3, linestyle="none", ecolor="grey")
        ax.scatter(values, y, c=colors, s=14, zorder=3)
        ax.axvline(1, color="black", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=label_size(len(names)))
    axes[0].set_ylabel("cell vs baseline")
    axes[0].invert_yaxis()
    fig.suptitle("Against the baseline on the same hardware in the same sweep (95% CI)")
    fit(fig)
    return fig


def plot_accuracy_vs_tpf(ag: Aggregates):
    cells = measured(ag.cells, "acc")
    cells = cells[np.isfinite(cells["tpf"].to_numpy(float))]
    if cells.empty:
        return "no cell has both accuracy and TPF (unscored or timing-only rows)"
    tasks = sorted(cells["task"].astype(str).unique())
    fig = Figure(figsize=(6 * len(tasks), 4.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)
    modes = colors_for(sorted(cells["mode"].astype(str).unique()))
    thresholds = sorted({"none" if pd.isna(t) else f"{t:g}" for t in cells["threshold"]})
    markers = dict(zip(thresholds, "osD^vP*X"))
    panels = []
    for ax, task in zip(axes[0], tasks):
        sub = cells[cells["task"].astype(str) == task]
        thr_of = sub["threshold"].map(lambda t: "none" if pd.isna(t) else f"{t:g}")
        for (mode, thr), group in sub.groupby([sub["mode"].astype(str), thr_of], sort=True):
            ax.errorbar(group["tpf"], group["acc"], xerr=yerr(group, "tpf"), yerr=yerr(group, "acc"),
                        marker=markers[thr], color=modes[mode], capsize=2, linestyle="none")
        front = pareto_front(sub["tpf"].to_numpy(float), sub["acc"].to_numpy(float))
        ax.plot(sub["tpf"].to_numpy(float)[front], sub["acc"].to_numpy(float)[front], color="grey",
                linestyle=":", label="Pareto front")
        ax.set_xlabel("TPF (tokens / forward, prefill included)")
        ax.set_ylabel("accuracy (% of samples correct)")
        ax.set_ylim(-4, 104)
        ax.set_title(f"task: {task}", fontsize=10)
        ax.grid(alpha=0.3)
        panels.append((ax, sub))
    handles = [Line2D([], [], color=c, marker="o", linestyle="none", label=m) for m, c in modes.items()]
    handles += [Line2D([], [], color="black", marker=mk, linestyle="none", label=f"threshold {t}") for t, mk in markers.items()]
    handles.append(Line2D([], [], color="grey", linestyle=":", label="Pareto front"))
    axes[0][-1].legend(handles=handles, fontsize=7)
    fig.suptitle("Accuracy vs tokens per forward, per mode and threshold (95% CI)")
    fit(fig)
    # Labels go on last, once the layout is final, each where it overlaps no other; those that find
    # no free place are listed under their panel.
    fig.subplots_adjust(bottom=fig.subplotpars.bottom + 0.08)  # room for the list of unlabelled points
    FigureCanvasAgg(fig)
    for ax, sub in panels:
        x, y = sub["tpf"].to_numpy(float), sub["acc"].to_numpy(float)
        front = set(pareto_front(x, y).tolist())
        order = sorted(range(len(sub)), key=lambda i: i not in front)  # the Pareto front gets its labels first
        names = cell_labels(sub)
        unplaced = place_labels(ax, [(x[i], y[i]) for i in order], [names[i] for i in order])
        if unplaced:
            listed = "; ".join(unplaced[:12]) + (f"; and {len(unplaced) - 12} more (cells.csv)" if len(unplaced) > 12 else "")
            ax.text(0, -0.13, "not labelled (no free space): " + listed, transform=ax.transAxes, fontsize=5, va="top",
                    wrap=True)
    return fig


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both x and y, sorted by x."""
    keep = [i for i in range(len(x)) if not any((x[j] >= x[i] and y[j] >= y[i]) and (x[j] > x[i] or y[j] > y[i])
                                                 for j in range(len(x)))]
    return np.array(sorted(keep, key=lambda i: x[i]), dtype=int)


# Width of a character of the labels' font (DejaVu Sans), in ems: a little over its mean (about
# 0.51 for cell names), so that a margin sized with it always holds the label.
CHAR_EMS = 0.56


def fit(fig: Figure, top: float = 0.75, bottom: float = 0.65, wspace: float = 0.3) -> None:
    """Margins in inches, whatever the figure's size: the suptitle and titles above, tick labels and
    axis labels below, the leftmost panel's tick labels (cell names, as long as they are) and its
    axis label on the left. Sized from the text itself, so the files are drawn once each: neither
    tight_layout nor a tight bounding box lays every label out again."""
    width, height = fig.get_size_inches()
    shown = [ax for ax in fig.axes if ax.axison]
    first = min(shown, key=lambda ax: ax.get_position().x0)
    labels = [t for t in first.get_yticklabels() if t.get_text()]
    label_in = max((len(t.get_text()) * t.get_fontsize() * CHAR_EMS / 72 for t in labels), default=0.45)
    if label_in > 1.0:  # long cell names: the figure grows by them, so the panels keep their width
        width += label_in - 1.0
        fig.set_figwidth(width)
    fig.subplots_adjust(left=(label_in + 0.6) / width, right=1 - 0.3 / width, top=1 - top / height,
                        bottom=bottom / height, wspace=wspace)


def row_height(cells: int) -> float:
    """Figure height (inches) for one row per cell: readable for a handful, bounded for hundreds."""
    return min(60.0, max(3.5, 0.2 * cells + 1.5))


def label_size(cells: int) -> float:
    return 7 if cells <= 60 else 5


def distribution_rows(ax, data: list[np.ndarray], color: str = "tab:blue") -> None:
    """One row per cell: a thin line from the 10th to the 90th percentile, a thick one over the
    quartiles, a white dot at the median. Three artists however many cells, so a large sweep draws
    as fast as a small one."""
    rows = [i for i, d in enumerate(data) if len(d)]
    if not rows:
        return
    q = np.array([np.percentile(data[i], [10, 25, 50, 75, 90]) for i in rows])
    y = np.array(rows, dtype=float)
    ax.hlines(y, q[:, 0], q[:, 4], color=color, linewidth=1)
    ax.hlines(y, q[:, 1], q[:, 3], color=color, linewidth=5)
    ax.scatter(q[:, 2], y, s=10, color="white", edgecolors=color, zorder=3)


def plot_latency(ag: Aggregates):
    rows = ag.prepared[ag.prepared["status"] == "ok"]
    if rows["e2e_s"].notna().sum() == 0:
        return "no request has a latency"
    cells = ag.cells[ag.cells["cell_id"].isin(rows["cell_id"].unique())].sort_values(
        ["model", "mode", "block_length", "task", "context", "concurrency"])
    names = cell_labels(cells)
    fig = Figure(figsize=(15, row_height(len(cells))))
    axes = fig.subplots(1, 3, sharey=True)
    by_cell = dict(tuple(rows.groupby("cell_id", sort=False)))
    for ax, column, title in ((axes[0], "ttft_s", "TTFT"), (axes[1], "tpot_s", "TPOT"), (axes[2], "e2e_s", "E2E")):
        data = [by_cell[c][column].dropna().to_numpy(float) * 1e3 for c in cells["cell_id"]]
        distribution_rows(ax, data)
        log_axis(ax, "x")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"{title} (ms, log scale)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names, fontsize=label_size(len(names)))
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    axes[0].set_ylabel("cell")
    fig.suptitle("Latency per cell over every request and repetition (line: 10th-90th percentile, bar: quartiles, "
                 "dot: median)")
    fit(fig)
    return fig


def plot_acceptance(ag: Aggregates):
    rows = ag.prepared[ag.prepared["status"] == "ok"]
    first = rows.sort_values("repetition").drop_duplicates(["cell_id", "sample_id"])  # repetitions are identical
    per_cell, engine = {}, set()
    for cell_id, group in first.groupby("cell_id"):
        steps = [x for v in group["accept_lengths"] if v is not None and not isinstance(v, float) for x in v]
        if steps:
            per_cell[cell_id] = np.asarray(steps, dtype=float)
        elif "engine_accept_length" in group and group["engine_accept_length"].notna().any():
            per_cell[cell_id] = group["engine_accept_length"].dropna().to_numpy(float)
            engine.add(cell_id)
    if not per_cell:
        return "no speculative cell recorded acceptance lengths"
    cells = ag.cells.set_index("cell_id").loc[list(per_cell)].reset_index()
    names = [f"{n} (engine: per-request means)" if c in engine else n for n, c in zip(cell_labels(cells), cells["cell_id"])]
    fig = Figure(figsize=(10, row_height(len(cells))))
    ax = fig.subplots()
    data = list(per_cell.values())
    distribution_rows(ax, data)
    ax.scatter([d.mean() for d in data], range(len(data)), marker="|", s=80, color="black", zorder=4, label="mean")
    ax.set_yticks(range(len(names)), names, fontsize=label_size(len(names)))
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("tokens emitted per verify step (tokens)")
    ax.set_ylabel("cell")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Acceptance lengths (first repetition of each sample; line: 10th-90th percentile, bar: quartiles, "
                 "dot: median, tick: mean)")
    fit(fig)
    return fig


def plot_cost(ag: Aggregates):
    cells = measured(ag.cells, "usd_per_mtok", "joules_per_token")
    if cells.empty:
        return ("no cell has a price per GPU-hour or an energy reading (hw_price_per_gpu_hour / gpu_energy_j "
                "are recorded on GPUs with a priced hardware profile)")
    cells = cells.sort_values(["hardware", "model", "mode", "block_length", "concurrency"])
    panels = [(f, t) for f, t in (("usd_per_mtok", "$ per 1M output tokens (USD)"),
                                  ("joules_per_token", "energy per output token (J)"))
              if np.isfinite(cells[f].to_numpy(float)).any()]
    fig = Figure(figsize=(7 * len(panels), row_height(len(cells))))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)  # one set of cell labels, on the left
    hardware_colors = colors_for(sorted(cells["hardware"].astype(str).unique()))
    names = cell_labels(cells, always=("model", "mode", "hardware"))
    y = np.arange(len(cells))
    for ax, (figure, title) in zip(axes[0], panels):
        ax.errorbar(cells[figure], y, xerr=yerr(cells, figure), capsize=3, linestyle="none", ecolor="grey")
        ax.scatter(cells[figure], y, c=[hardware_colors[str(h)] for h in cells["hardware"]], s=14, zorder=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(y, names, fontsize=label_size(len(names)))
    axes[0][0].set_ylabel("cell")
    axes[0][0].invert_yaxis()
    fig.suptitle("Cost and energy by hardware (95% CI; prices as recorded in the rows)")
    fit(fig)
    return fig


PLOTS = [
    PlotSpec("tpf_throughput_vs_concurrency", "TPF, throughput and forward time against concurrency",
             "Per mode and block length: TPF (sum of new tokens / sum of forwards, prefill included), system output "
             "tokens/s and the mean wall time of a forward after the prefill, against requests in flight. TPF can stay "
             "high while the cost of each forward grows with the block and the batch.", plot_concurrency),
    PlotSpec("tpf_by_mode", "TPF by mode under each counting rule",
             "Ours with and without the prefill, the vendor's nfe rule for the mode, and the vendor's printed figure "
             "(tokens returned before trimming to max_new_tokens).", plot_tpf_by_mode),
    PlotSpec("throughput_vs_context", "Throughput against context length",
             "System output tokens/s per cell against its median prompt length, one panel per hardware.",
             plot_throughput_vs_context),
    PlotSpec("speedup_vs_baseline", "Speedup against the baseline",
             "Ratio of median per-request output tokens/s, and the TPF ratio, against the baseline's ar cell on the "
             "same hardware, sweep, runner, task, context and concurrency.", plot_speedup),
    PlotSpec("accuracy_vs_tpf", "Accuracy against TPF (Pareto)",
             "Accuracy (% of samples correct) against TPF per mode (colour) and threshold (marker), per task; the "
             "dotted line joins the cells no other cell beats on both.", plot_accuracy_vs_tpf),
    PlotSpec("latency_distributions", "Latency distributions",
             "TTFT, TPOT and E2E of every request and repetition, per cell.", plot_latency),
    PlotSpec("acceptance_lengths", "Acceptance lengths",
             "Tokens emitted per verify step of the speculative modes (engines: the per-request mean they report).",
             plot_acceptance),
    PlotSpec("cost_by_hardware", "Cost per 1M tokens and energy by hardware",
             "$ per 1M output tokens = price per GPU-hour x GPUs / (system tokens/s x 3600) x 1e6; J per token = "
             "NVML energy / new tokens.", plot_cost),
]
