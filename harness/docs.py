"""`python -m harness.docs`: rewrite the documentation tables whose truth is in the code.

A generated table sits between two marker lines in a README:

    <!-- generated: definitions-cell (python -m harness.docs) -->
    | figure | definition |
    ...
    <!-- end -->

`BLOCKS` names the function that writes each one; `python -m harness.docs` rewrites every marked
block of `DOCUMENTS` in place, `--check` only lists the stale ones (exit 1). tests/test_docs_sync.py
runs the check, so a definition, column, config option or claim changed in the code without its
table fails the tests. The record schema's table in results/README.md carries no markers: it is
`harness.records.markdown_table` (what `python -m harness.records` prints), found by its header
line and checked by tests/test_store.py; this module rewrites it too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs"
# Every README that holds a generated block (a block name may appear in one file only).
DOCUMENTS = ("README.md", "harness/README.md", "harness/report/README.md", "reference_decoders/README.md")
SCHEMA_DOCUMENT = "results/README.md"
MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z0-9-]+)[^>]*-->\n(?P<body>.*?)^<!-- end -->$", re.M | re.S)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "/")


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def row_figures() -> str:
    """Every column harness.figures.derive adds to a row."""
    from harness.figures import ROW_FIGURES

    return _table(("column", "definition"), [(f"`{name}`", doc) for name, doc in ROW_FIGURES.items()])


def cell_figures() -> str:
    """Every figure of the per-cell aggregate, as the summary and the report title it."""
    from harness.report.aggregate import DEFINITIONS

    return _table(("figure", "definition"), [(f"`{name}`", doc) for name, doc in DEFINITIONS.items()])


def vendor_nfe() -> str:
    """The vendor's nfe rule per mode, as reference_decoders.conventions reproduces it."""
    from reference_decoders.conventions import RULES

    return _table(("mode", "vendor function: nfe rule"), [(f"`{mode}`", rule) for mode, rule in RULES.items()])


def claims() -> str:
    """The claims configs/claims/vendor.yaml holds, as harness.report.claims validates them."""
    from harness.report.claims import conditions_text, load_claims

    rows = [(f"`{c.id}`", c.statement, c.metric, conditions_text(c.subject), conditions_text(c.baseline),
             conditions_text(c.require) or "-", ", ".join(c.tasks), c.min_samples, c.target_text())
            for c in load_claims()]
    return _table(("claim", "statement", "metric", "subject", "baseline", "both sides", "tasks", "min samples",
                   "claimed"), rows)


def config_groups() -> str:
    """Each config group: the dataclass that validates it and its options (the files in configs/<group>/)."""
    from harness.config import RUNNER_SCHEMAS, BenchConfig
    from dataclasses import fields

    types = {f.name: f.type for f in fields(BenchConfig)}
    rows = []
    for group in sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")):
        if group == "claims":  # data for the report, not a Hydra group
            continue
        if group == "hydra":  # Hydra's own groups (the planning sweeper, local-gpus launcher), chosen by the launcher row
            continue
        options = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        schema = types.get(group)
        if group == "runner":
            schema = ", ".join(s.__name__ for s in RUNNER_SCHEMAS.values())
        elif group == "launcher":
            schema = "Hydra's launchers (basic, submitit) and local-gpus (harness/local_gpus_launcher.py)"
        else:
            schema = getattr(schema, "__name__", str(schema))
        rows.append((f"`{group}`", schema, ", ".join(f"`{o}`" for o in options)))
    return _table(("group", "validated by", "options (`configs/<group>/`)"), rows)


BLOCKS: dict[str, Callable[[], str]] = {
    "claims": claims,
    "config-groups": config_groups,
    "definitions-row": row_figures,
    "definitions-cell": cell_figures,
    "vendor-nfe": vendor_nfe,
}


def render(text: str) -> str:
    """`text` with every marked block rewritten from the code."""
    def block(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
        opening = match.group(0).splitlines()[0]
        return f"{opening}\n{BLOCKS[name]()}\n<!-- end -->"

    return MARKER.sub(block, text)


def render_schema(text: str) -> str:
    """`text` with the table that starts at the schema's header line replaced by the current schema."""
    from harness.records import markdown_table

    table = markdown_table()
    lines = text.split("\n")
    start = lines.index(table.split("\n")[0])
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[:start] + table.split("\n") + lines[end:])


def blocks_in(text: str) -> list[str]:
    return [m["name"] for m in MARKER.finditer(text)]


def rendered() -> dict[str, tuple[str, str]]:
    """document -> (its text, the text with every generated table rewritten)."""
    out = {doc: (REPO / doc).read_text() for doc in (*DOCUMENTS, SCHEMA_DOCUMENT)}
    return {doc: (text, render_schema(text) if doc == SCHEMA_DOCUMENT else render(text)) for doc, text in out.items()}


def stale_documents() -> list[str]:
    return [doc for doc, (text, fresh) in rendered().items() if text != fresh]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale documents and exit 1; write nothing")
    args = parser.parse_args(argv)
    stale = stale_documents()
    if args.check:
        for doc in stale:
            print(f"{doc}: a generated table is stale; run python -m harness.docs", file=sys.stderr)
        return 1 if stale else 0
    fresh = rendered()
    for doc in stale:
        (REPO / doc).write_text(fresh[doc][1])
        print(f"rewrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
