"""The documentation tables whose truth is in the code match the code (`python -m harness.docs`),
CI and the README run one test script, and the docs name only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

from harness import docs

REPO = Path(__file__).resolve().parent.parent


def test_every_generated_table_matches_the_code():
    assert docs.stale_documents() == [], "regenerate the tables with python -m harness.docs"


def test_every_generated_block_appears_in_exactly_one_document():
    found = [name for doc in docs.DOCUMENTS for name in docs.blocks_in((REPO / doc).read_text())]
    assert sorted(found) == sorted(docs.BLOCKS)


def test_a_table_edited_by_hand_is_stale_and_regenerates():
    text = (REPO / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `tpf-5.9x-vs-qwen3`"))
    edited = text.replace(row, row.replace(">= 5.9x", ">= 6.9x"))
    assert edited != text and docs.render(edited) == text
    schema = (REPO / docs.SCHEMA_DOCUMENT).read_text()
    dropped = schema.replace(next(line for line in schema.splitlines() if line.startswith("| `cell_key`")) + "\n", "")
    assert docs.render_schema(dropped) == schema


def test_ci_and_the_readme_run_the_same_test_script():
    first_block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)[1].splitlines()
    assert first_block[1] == "bash tests/run.sh"
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "exec bash tests/run.sh"
    script = (REPO / "tests" / "run.sh").read_text()
    assert "pip install -q -e '.[test]'" in script and "python -m pytest" in script


def test_the_docs_name_only_files_that_exist():
    missing = []
    for doc in (*docs.DOCUMENTS, docs.SCHEMA_DOCUMENT, "runners/README.md", "harness/tasks/README.md"):
        for path in set(re.findall(r"`((?:harness|runners|reference_decoders|configs|tests|notebooks)/[\w/.-]+\.(?:py|yaml|ipynb|sh))`",
                                   (REPO / doc).read_text())):
            if not (REPO / path).exists():
                missing.append(f"{doc}: {path}")
    assert missing == []
