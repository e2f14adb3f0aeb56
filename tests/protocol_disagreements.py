"""How often a revision's scorers disagree with the references' own verdicts, per task, on the
completions of tests/protocol_cases.py:

    python -m tests.protocol_disagreements                 # before (main at 1815dde) and after (this tree)
    python -m tests.protocol_disagreements --before <rev>  # another baseline

References: lm-eval 0.4.13's own filter and metric classes on gsm8k.yaml (flexible-extract and
strict-match), RULER's string_match_all as lm-eval 0.4.13 ships it (verdict = all references
found), and for NeMo-Skills the verdicts of its own math_grader.py recorded in
tests/fixtures/protocols/nemo_skills_math.json. A revision's verdict is its task scorer's `correct`
(`correct_strict` for strict-match) under the protocol that stands for that reference (before
protocols existed, the task's only scorer). Each revision's harness is imported in a subprocess
from `git archive` of that revision.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "tests" / "fixtures" / "protocols" / "nemo_skills_math.json"
BASE = "1815dde"  # main before the protocols


def reference_verdicts() -> dict[str, list]:
    from lm_eval.tasks.ruler.common_utils import postprocess_pred, string_match_all

    from tests.protocol_cases import gsm8k_cases, ruler_cases
    from tests.test_protocols_lm_eval import lm_eval_gsm8k_verdicts

    table = json.loads(TABLE.read_text(encoding="utf-8"))["cases"]
    stops = ("Question:", "</s>", "<|im_end|>")  # gsm8k.yaml until; lm-eval cuts there before filtering
    gsm8k = []
    for completion, answer in gsm8k_cases():
        cut = min([completion.find(s) for s in stops if s in completion] + [len(completion)])
        verdicts = lm_eval_gsm8k_verdicts(completion[:cut], answer)
        gsm8k.append((completion[:cut], answer, verdicts["flexible-extract"][1], verdicts["strict-match"][1]))
    return {
        "gsm8k-lm-eval": gsm8k,
        "gsm8k-nemo-skills": [(c["completion"], c["reference"], c["symbolic_correct"]) for c in table if c["task"] == "gsm8k"],
        "math500-nemo-skills": [(c["completion"], c["reference"], c["symbolic_correct"]) for c in table if c["task"] == "math500"],
        "ruler": [(task, completion, refs, string_match_all(postprocess_pred([completion]), [refs]) == 1.0)
                  for task, completion, refs in ruler_cases()],
    }


def revision_verdicts(cases: dict[str, list]) -> dict[str, list]:
    """The imported harness's verdicts on the cases (run inside the revision's subprocess)."""
    from harness.tasks import get_task
    from harness.tasks.base import Example

    def example(answer, protocol, **extra):
        try:
            return Example(id="x", question="?", answer=answer, protocol=protocol, **extra)
        except TypeError:  # a revision before protocols
            return Example(id="x", question="?", answer=answer, **extra)

    gsm8k, math500 = get_task("gsm8k"), get_task("math500")
    has_protocols = hasattr(gsm8k, "protocols")
    out = {"gsm8k-lm-eval": [], "gsm8k-nemo-skills": [], "math500-nemo-skills": [], "ruler": []}
    for completion, answer, _, _ in cases["gsm8k-lm-eval"]:
        if has_protocols:
            from harness.tasks.math_grading import exact_match_normalise
            gold = exact_match_normalise(answer)
        else:
            from harness.tasks.math_reasoning import number_text
            gold = number_text(gsm8k.gold(answer))
        score = gsm8k.score(example(gold, "lm-eval", metadata={"shots": ()}), completion)
        out["gsm8k-lm-eval"].append((bool(score.correct), bool(score.strict_correct)))
    for completion, reference, _ in cases["gsm8k-nemo-skills"]:
        out["gsm8k-nemo-skills"].append(bool(gsm8k.score(example(reference, "nemo-skills", metadata={"shots": ()}), completion).correct))
    for completion, reference, _ in cases["math500-nemo-skills"]:
        out["math500-nemo-skills"].append(bool(math500.score(example(reference, "nemo-skills"), completion).correct))
    for task, completion, refs, _ in cases["ruler"]:
        answer = " ".join(sorted(refs)) if task == "variable-tracking" else refs[0]
        out["ruler"].append(bool(get_task(task).score(example(answer, "ruler"), completion).correct))
    return out


def run_revision(revision: str | None, cases: dict[str, list]) -> dict[str, list]:
    """Verdicts of `revision` (None: this working tree), in a subprocess importing its harness."""
    with tempfile.TemporaryDirectory() as tmp:
        root = REPO
        if revision is not None:
            archive = subprocess.run(["git", "archive", revision, "harness", "reference_decoders", "runners", "configs"],
                                     cwd=REPO, check=True, capture_output=True).stdout
            tarfile.open(fileobj=BytesIO(archive)).extractall(tmp)
            root = Path(tmp)
        (Path(tmp) / "cases.json").write_text(json.dumps(cases))
        code = ("import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
                "from tests.protocol_disagreements import revision_verdicts; "
                "print(json.dumps(revision_verdicts(json.load(open(sys.argv[3])))))")
        env = {**os.environ, "PYTHONPATH": ""}
        result = subprocess.run([sys.executable, "-c", code, str(root), str(REPO), str(Path(tmp) / "cases.json")],
                                cwd=tmp, env=env, check=True, capture_output=True, text=True)
        return json.loads(result.stdout.strip().splitlines()[-1])


def disagreements(cases: dict[str, list], verdicts: dict[str, list]) -> dict[str, int]:
    lm = list(zip(cases["gsm8k-lm-eval"], verdicts["gsm8k-lm-eval"]))
    counts = {
        "gsm8k vs lm-eval flexible-extract": sum(ref[2] != ours[0] for ref, ours in lm),
        "gsm8k vs lm-eval strict-match": sum(ref[3] != ours[1] for ref, ours in lm),
        "gsm8k vs NeMo-Skills math_equal": sum(c[2] != v for c, v in zip(cases["gsm8k-nemo-skills"], verdicts["gsm8k-nemo-skills"])),
        "math500 vs NeMo-Skills math_equal": sum(c[2] != v for c, v in zip(cases["math500-nemo-skills"], verdicts["math500-nemo-skills"])),
    }
    for task in ("passkey", "niah-multikey", "variable-tracking"):
        pairs = [(c, v) for c, v in zip(cases["ruler"], verdicts["ruler"]) if c[0] == task]
        counts[f"{task} vs RULER string_match_all"] = sum(c[3] != v for c, v in pairs)
    return counts


def case_counts(cases: dict[str, list]) -> dict[str, int]:
    counts = {"gsm8k vs lm-eval flexible-extract": len(cases["gsm8k-lm-eval"]), "gsm8k vs lm-eval strict-match": len(cases["gsm8k-lm-eval"]),
              "gsm8k vs NeMo-Skills math_equal": len(cases["gsm8k-nemo-skills"]),
              "math500 vs NeMo-Skills math_equal": len(cases["math500-nemo-skills"])}
    for task in ("passkey", "niah-multikey", "variable-tracking"):
        counts[f"{task} vs RULER string_match_all"] = sum(c[0] == task for c in cases["ruler"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BASE, help="git revision of the baseline (default: %(default)s)")
    args = parser.parse_args()
    cases = reference_verdicts()
    before = disagreements(cases, run_revision(args.before, cases))
    after = disagreements(cases, run_revision(None, cases))
    totals = case_counts(cases)
    print(f"Disagreements with the reference's verdict (count of completions; before = {args.before}, after = this tree)")
    print("| task vs reference | completions | before | after |")
    print("|---|---|---|---|")
    for name in before:
        print(f"| {name} | {totals[name]} | {before[name]} | {after[name]} |")


if __name__ == "__main__":
    main()
