"""The report end to end: written by a real sweep, opened in a headless browser, and the notebook.

The browser is Chromium. When none is on PATH the `chromium` fixture installs Debian's package
(`apt-get install chromium`) if the process runs as root with apt-get, as on the project's machines
and in CI; otherwise, or with DLM_BENCH_NO_BROWSER_INSTALL=1, the browser tests are skipped with
the reason. DLM_BENCH_CHROMIUM names a browser binary to use instead.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.report import build_report
from harness.report.aggregate import Bootstrap
from harness.report.plots import PLOTS
from tests.conftest import REPO, run_cli
from tests.synthetic_records import base_row, write_cell
from tests.test_report_aggregate import ar_cell, engine_rows, spec_cell

EMBEDDED_PLOTS = {"tpf_by_mode", "throughput_vs_context", "speedup_vs_baseline", "accuracy_vs_tpf",
                  "latency_distributions", "acceptance_lengths"}


@pytest.fixture(scope="session")
def embedded_results(tmp_path_factory, random_checkpoint) -> Path:
    """The embedded default's sweep (ar, diffusion, linear_spec; two contexts), run by the CLI."""
    results = tmp_path_factory.mktemp("embedded-results")
    run = run_cli("-m", "mode=ar,diffusion,linear_spec", "context=natural,ctx128", "task=copy", "task.num_samples=3",
                  f"model.source={random_checkpoint}", f"results_dir={results}")
    assert run.returncode == 0, run.stderr[-3000:]
    return results / "embedded"


def test_the_sweep_writes_the_report_claims_first_then_environment_then_details(embedded_results):
    out = embedded_results / "_report"
    markdown = (out / "report.md").read_text()
    order = [markdown.index(h) for h in ("## Claims", "## Environment of every run", "## Results per cell",
                                         "## Against the baseline", "## Plots", "## How every number is counted")]
    assert order == sorted(order)
    # None of the vendor's benchmarks, no Nemotron, Qwen3-8B, GB200 or SGLang here: every vendor claim
    # is "not measured", saying what is missing; none is confirmed or refuted from these 3 samples.
    assert markdown.count("| not measured |") == 4
    assert "| confirmed |" not in markdown and "| refuted |" not in markdown
    assert "no records with task=['gsm8k', 'math500', 'humaneval', 'mbpp'] (they have: copy)" in markdown
    # Timings from a CPU and a tiny model are flagged as such, above everything else.
    assert markdown.index("not evidence about GPU speed") < markdown.index("## Claims")
    # Every time has its roofline floor beside it (the CPU profile has no bandwidth: '-').
    assert "| E2E floor | E2E x floor |" in markdown
    for name in EMBEDDED_PLOTS:
        assert (out / f"{name}.png").stat().st_size > 5000 and (out / f"{name}.svg").exists()
        assert f"({name}.png)" in markdown
    # Plots without data say why instead of failing.
    assert "not drawn (only concurrency 1 was measured" in markdown
    assert "Cost per 1M tokens and energy by hardware: not drawn (no cell has a price" in markdown
    for table in ("cells.csv", "comparisons.csv", "claims.csv", "environment.csv", "summary.csv"):
        assert (out / table).stat().st_size > 0


def test_the_html_report_is_one_self_contained_file(embedded_results):
    page = (embedded_results / "_report" / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(EMBEDDED_PLOTS) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(href|src)="(https?:|file:|//)', page) and "<link" not in page
    assert page.index('id="claims"') < page.index('id="environment-of-every-run"') < page.index('id="results-per-cell"')
    # A table of contents links every section; wide tables scroll inside their own box.
    toc = page[page.index('<nav class="toc"'):page.index("</nav>")]
    for anchor in ("claims", "environment-of-every-run", "results-per-cell", "plots", "how-every-number-is-counted"):
        assert f'href="#{anchor}"' in toc and f'id="{anchor}"' in page
    assert ".table-wrap { overflow: auto;" in page and page.count('<div class="table-wrap">') >= 5
    assert 'class="banner"' in page


def test_dlm_bench_report_judges_claims_given_in_a_file(embedded_results, tmp_path):
    """The command on the sweep's folder, with claims about the tiny model that its records decide."""
    claims = tmp_path / "tiny.yaml"
    claims.write_text(yaml.safe_dump({"claims": [
        {"id": "lossless", "statement": "greedy linear_spec keeps ar's accuracy", "metric": "accuracy",
         "comparison": "difference", "claimed": 0.0, "tolerance": 1.0, "direction": "within",
         "subject": {"mode": "linear_spec"}, "baseline": {"mode": "ar"}, "tasks": ["copy"], "min_samples": 3},
        {"id": "lossless-100", "statement": "the same, as a claim needing 100 samples", "metric": "accuracy",
         "comparison": "difference", "claimed": 0.0, "tolerance": 1.0, "direction": "within",
         "subject": {"mode": "linear_spec"}, "baseline": {"mode": "ar"}, "tasks": ["copy"], "min_samples": 100},
        {"id": "tpf-5.9x", "statement": "5.9x TPF", "metric": "tpf", "comparison": "ratio", "claimed": 5.9,
         "tolerance": 0.5, "direction": "at_least", "subject": {"mode": "linear_spec"}, "baseline": {"mode": "ar"},
         "evidence_metrics": ["vendor_tpf_untrimmed"], "tasks": ["copy"], "min_samples": 3},
    ]}))
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "harness.report", str(embedded_results), "--claims", str(claims),
                          "--out", str(out), "--resamples", "300"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-3000:]
    # linear_spec is lossless under greedy decoding: identical outputs, a paired difference of exactly 0,
    # but 3 agreeing pairs cannot bound it to 1 point (Clopper-Pearson envelope +/- 70 points).
    assert "lossless: INCONCLUSIVE" in run.stdout
    assert "lossless-100: INSUFFICIENT EVIDENCE" in run.stdout and "the claim needs at least 100" in run.stdout
    # A random tiny model accepts about one draft token per round: nowhere near 5.9 tokens per forward.
    assert "tpf-5.9x: REFUTED" in run.stdout
    assert (out / "report.html").exists() and "identical outputs on 3 of 3" in (out / "report.md").read_text()

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"claims": [{"id": "x", "metric": "speed"}]}))
    run = subprocess.run([sys.executable, "-m", "harness.report", str(embedded_results), "--claims", str(bad)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and "claims[x]: missing field(s)" in run.stderr

    (tmp_path / "empty").mkdir()
    run = subprocess.run([sys.executable, "-m", "harness.report", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and "no parquet records under" in run.stderr


# --- a report with every plot --------------------------------------------------------------


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """Synthetic records with every kind of data: reference cells at two context lengths with accuracy
    and acceptance lengths, engine cells over concurrency with prices and energy."""
    folder = tmp_path_factory.mktemp("full")
    write_cell(folder, "qwen", ar_cell())
    write_cell(folder, "spec", spec_cell())
    write_cell(folder, "qwen-4k", ar_cell(context="ctx4k", prompt_tokens=4096, e2e=lambda i: 2.5 + 0.01 * i))
    write_cell(folder, "spec-4k", spec_cell(context="ctx4k", prompt_tokens=4096, e2e=lambda i: 0.9 + 0.01 * i))
    # As public B200 measurements show: TPF falls with concurrency (6.1 -> 3.3) while each forward gets dearer.
    for concurrency, spec_rate, base_rate, forwards, slower in ((1, 450.0, 100.0, 32, 1.0), (8, 2400.0, 700.0, 45, 2.5),
                                                                 (64, 8000.0, 4000.0, 60, 8.0)):
        write_cell(folder, f"sglang-spec-{concurrency}",
                   engine_rows("linear_spec", concurrency, spec_rate, 32, forwards, e2e_scale=slower))
        write_cell(folder, f"sglang-base-{concurrency}", engine_rows("ar", concurrency, base_rate, None, 199, e2e_scale=slower / 2))
    write_cell(folder, "skipped", [base_row(mode="diffusion", status="skipped", error="qwen3-8b was trained for modes ['ar']")])
    return build_report(folder, boot=Bootstrap(resamples=300, seed=0))


def test_every_plot_is_drawn_when_its_data_is_there(full_report):
    assert [p.name for p in full_report.plots if p.skipped] == []
    assert len(full_report.plots) == len(PLOTS)
    for plot in full_report.plots:
        assert plot.png.stat().st_size > 5000 and plot.svg.read_text().lstrip().startswith("<?xml")
    verdicts = {v.claim.id: v.verdict for v in full_report.verdicts}
    assert verdicts["tpf-5.9x-vs-qwen3"] == "not measured"  # gsm8k only, of the four tasks it needs
    assert verdicts["speed-bench-4x-sglang-gb200"] == "insufficient evidence"  # 16 requests per cell, 64 needed


def test_plot_labels_never_overlap_and_every_axis_says_its_unit(full_report):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation

    for spec in PLOTS:
        fig = spec.draw(full_report.aggregates)
        assert not isinstance(fig, str), fig
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        for ax in fig.axes:
            if not ax.axison:
                continue
            # y: its own label, or that of the panel whose y axis it shares (and whose ticks it hides)
            ylabel = ax.get_ylabel() or next((o.get_ylabel() for o in ax.get_shared_y_axes().get_siblings(ax)
                                              if o.get_ylabel()), "")
            for label in (ax.get_xlabel(), ylabel):
                # a numeric axis names its unit in brackets; a categorical one says what its rows are
                assert label and ("(" in label or label.startswith("cell")), (spec.name, label)
        if spec.name == "accuracy_vs_tpf":
            renderer = fig.canvas.get_renderer()
            labels = [t for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]
            # The two ar cells (natural, ctx4k) sit on the same point: 60% at TPF 1.
            assert len(labels) == 4
            boxes = [t.get_window_extent(renderer) for t in labels]
            assert not [(a.get_text(), b.get_text()) for i, (a, x) in enumerate(zip(labels, boxes))
                        for b, y in zip(labels[i + 1:], boxes[i + 1:]) if x.overlaps(y)]


# --- the browser -------------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=15000"]
# Appended to a copy of the report (never to the product): records what the browser made of each plot.
PROBE = """<script>
window.addEventListener("load", () => {
  const seen = [...document.querySelectorAll("img")].map((img) => {
    const box = img.getBoundingClientRect(), style = getComputedStyle(img);
    return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, width: box.width,
            height: box.height, shown: style.display !== "none" && style.visibility !== "hidden"};
  });
  const out = document.createElement("pre");
  out.id = "dlm-probe";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="session")
def chromium() -> str:
    named = os.environ.get("DLM_BENCH_CHROMIUM")
    found = named or next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    if found:
        return found
    if os.environ.get("DLM_BENCH_NO_BROWSER_INSTALL"):
        pytest.skip("no Chromium on PATH, and DLM_BENCH_NO_BROWSER_INSTALL forbids installing one")
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no Chromium on PATH, and installing one needs root and apt-get (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        if done.returncode:
            pytest.skip(f"installing Chromium failed ({' '.join(command)}): {done.stderr[-800:]}")
    found = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    if not found:
        pytest.skip("apt-get installed chromium but no Chromium binary is on PATH")
    return found


def browse(chromium: str, page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{uuid.uuid4().hex[:8]}"
    run = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def plots_as_rendered(chromium: str, report_html: Path, tmp_path: Path) -> list[dict]:
    probed = tmp_path / f"probed-{report_html.parent.name}.html"
    probed.write_text(report_html.read_text().replace("</body>", PROBE + "\n</body>"))
    dom = browse(chromium, probed, tmp_path, "--window-size=1400,1000", "--dump-dom").stdout
    found = re.search(r'<pre id="dlm-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; DOM tail: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


def assert_every_plot_visible(seen: list[dict], titles: set[str]) -> None:
    assert {img["alt"] for img in seen} == titles
    for img in seen:
        assert img["complete"] and img["naturalWidth"] > 300, img  # decoded from its data URI
        assert img["shown"] and img["width"] > 300 and img["height"] > 100, img  # laid out on the page


def test_the_embedded_report_opens_in_a_browser_with_every_plot_visible(chromium, embedded_results, tmp_path):
    report_html = embedded_results / "_report" / "report.html"
    titles = {spec.title for spec in PLOTS if spec.name in EMBEDDED_PLOTS}
    assert_every_plot_visible(plots_as_rendered(chromium, report_html, tmp_path), titles)
    # And a screenshot of the top of the page (the claims table) is a rendered page, not a blank one.
    shot = tmp_path / "report.png"
    browse(chromium, report_html, tmp_path, "--window-size=1400,2400", f"--screenshot={shot}")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1400)
    ink = (pixels.min(axis=2) < 0.6).mean()  # text, table borders, verdict colours
    assert ink > 0.01, f"only {ink:.2%} of the screenshot is not background"
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20


def test_the_full_report_opens_in_a_browser_with_every_plot_visible(chromium, full_report, tmp_path):
    titles = {spec.title for spec in PLOTS}
    assert_every_plot_visible(plots_as_rendered(chromium, full_report.html, tmp_path), titles)


# --- the notebook ------------------------------------------------------------------------------


def test_the_notebook_runs_top_to_bottom_on_the_embedded_results(embedded_results, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("DLM_BENCH_RESULTS", str(embedded_results))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(REPO / "notebooks" / "analysis.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert f"records, 6 cells, from {embedded_results}" in text
    assert "tok/s sys" in text and "not measured" in text  # the headline table and the claims
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2


# --- files written whole, and only sound records in them ------------------------------------


def test_report_files_are_written_whole_with_the_umasks_permissions_and_without_refused_files(tmp_path, monkeypatch):
    import errno

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "sweep"
    write_cell(folder, "qwen", ar_cell())
    old = pa.table({"cell_key": ["old"], "status": ["ok"], "model": ["from-0.9"], "sample_id": ["x"]})
    pq.write_table(old.replace_schema_metadata({"dlm_bench_schema_version": "0.9"}), folder / "old.parquet")
    umask = os.umask(0o002)
    try:
        report = build_report(folder, boot=Bootstrap(resamples=100, seed=0))
    finally:
        os.umask(umask)
    assert list(report.aggregates.cells["cell_key"]) == ["qwen"]  # the 0.9 file validate rejects is not in it
    written = sorted(p for p in report.folder.iterdir())
    assert {p.name for p in written} >= {"report.md", "report.html", "summary.csv", "cells.csv"}
    assert all(p.stat().st_mode & 0o777 == 0o664 for p in written)
    before = {p.name: p.read_bytes() for p in written}

    real_to_csv = pd.DataFrame.to_csv

    def disk_full(self, handle, **kwargs):  # fault injection: the disk fills halfway through a table
        real_to_csv(self.head(1), handle, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build_report(folder, boot=Bootstrap(resamples=100, seed=0))
    after = {p.name: p.read_bytes() for p in report.folder.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary left behind
    tables = [n for n in before if n.endswith((".csv", ".md", ".html"))]
    assert all(after[n] == before[n] for n in tables)  # the previous tables and text whole (plots are redrawn whole)
