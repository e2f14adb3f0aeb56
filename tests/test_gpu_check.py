"""The prepared GPU check runs end to end on the CPU in its dry mode (tiny shapes, no NVML)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_gpu_check_dry_run_prints_the_table_and_one_json_record(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, "-m", "harness.gpu_check", "--dry-run", "--json-out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DRY RUN" in proc.stdout and "overall: ok" in proc.stdout
    line = next(l for l in proc.stdout.splitlines() if l.startswith("GPU_CHECK_JSON "))
    record = json.loads(line.removeprefix("GPU_CHECK_JSON "))
    assert record == json.loads(out.read_text())
    assert record["ok"] and not record["errors"] and record["nvml"]["read"] is False
    lossless = {r["mode"]: r["lossless_vs_ar"] for r in record["decoders"]}
    assert lossless == {"ar": None, "diffusion": None, "linear_spec": True, "quadratic_spec": True}
    assert sorted({r["query_tokens"] for r in record["roofline"]}) == [1, 8, 32]
    assert all(r["ratio"] > 0 and r["batch"] == 1 for r in record["roofline"])
    cells = {c["mode"]: c for c in record["sweep"]["cells"]}
    assert set(cells) == {"ar", "linear_spec"} and all(c["status"] == "ok" and c["rows"] == 1 for c in cells.values())
    assert all(c["energy_j"] is None and c["power_mean_w"] is None for c in cells.values())  # no NVML here
