"""One report, two renderings: Markdown (beside PNG/SVG files) and one self-contained HTML file.

The report is built once as a list of blocks; each renderer walks the same list, so the two files
never say different things. The HTML embeds every plot as a data URI and its own CSS: it opens
anywhere, offline, as a single file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import pandas as pd

from harness.report.plots import Plot

VERDICT_CLASSES = {"confirmed": "confirmed", "refuted": "refuted", "inconclusive": "inconclusive",
                   "insufficient evidence": "insufficient", "not measured": "not-measured"}


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    banner: bool = False  # a warning the reader must not miss (shown boxed, and in bold in Markdown)


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass
class Table:
    frame: pd.DataFrame  # cells already formatted as text


@dataclass(frozen=True)
class Figure:
    plot: Plot


Block = Heading | Paragraph | Bullets | Table | Figure


# --- Markdown ----------------------------------------------------------------------------------


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            out += [f"> **{block.text}**" if block.banner else block.text, ""]
        elif isinstance(block, Bullets):
            out += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            out += [markdown_table(block.frame), ""]
        elif isinstance(block, Figure):
            plot = block.plot
            if plot.skipped:
                out += [f"*{plot.title}: not drawn ({plot.skipped}).*", ""]
            else:
                out += [f"![{plot.title}]({plot.png.name})", "", f"*{plot.caption}* ([SVG]({plot.svg.name}))", ""]
    return "\n".join(out).rstrip() + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


# --- HTML --------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1500px;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2.2rem; }
/* A wide or long table scrolls inside its own box; the page itself never scrolls sideways. */
.table-wrap { overflow: auto; max-width: 100%; max-height: 75vh; margin: .6rem 0 1rem; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: .82rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
td.confirmed { background: #d7f5dd !important; font-weight: 600; }
td.refuted { background: #fbd9d9 !important; font-weight: 600; }
td.inconclusive { background: #fff3cd !important; font-weight: 600; }
td.insufficient { background: #e8e0f5 !important; font-weight: 600; }
td.not-measured { background: #e6e6e6 !important; font-weight: 600; }
.banner { border: 2px solid #b26a00; background: #fff4e0; padding: .6rem .9rem; font-weight: 600; }
nav.toc { border: 1px solid #ccc; background: #fafafa; padding: .4rem 1rem; margin: 1rem 0; font-size: .9rem; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; display: block; }
figcaption { font-size: .85rem; color: #444; margin-top: .3rem; }
.skipped { color: #7a5d00; font-style: italic; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    anchors = heading_anchors(blocks)
    toc_done = False
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            if block.level == 2 and not toc_done:  # the table of contents, just before the first section
                parts.append(table_of_contents(blocks, anchors))
                toc_done = True
            parts.append(f'<h{block.level} id="{anchors[i]}">{html.escape(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            css = ' class="banner"' if block.banner else ""
            parts.append(f"<p{css}>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            parts.append(html_table(block.frame))
        elif isinstance(block, Figure):
            parts.append(html_figure(block.plot))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def heading_anchors(blocks: list[Block]) -> dict[int, str]:
    """Block index -> a unique id for each heading (a repeated title gets -2, -3, ...)."""
    anchors, seen = {}, {}
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            base = "".join(ch if ch.isalnum() else "-" for ch in block.text.lower()).strip("-") or "section"
            seen[base] = seen.get(base, 0) + 1
            anchors[i] = base if seen[base] == 1 else f"{base}-{seen[base]}"
    return anchors


def table_of_contents(blocks: list[Block], anchors: dict[int, str]) -> str:
    """Sections (level 2) with their subsections (level 3), as nested links."""
    items: list[str] = []
    open_sub = False
    for i, block in enumerate(blocks):
        if not isinstance(block, Heading) or block.level not in (2, 3):
            continue
        link = f'<a href="#{anchors[i]}">{html.escape(block.text)}</a>'
        if block.level == 2:
            if open_sub:
                items.append("</ul></li>")
                open_sub = False
            elif items:
                items.append("</li>")
            items.append(f"<li>{link}")
        else:
            if not open_sub:
                items.append("<ul>")
                open_sub = True
            items.append(f"<li>{link}</li>")
    items.append("</ul></li>" if open_sub else "</li>")
    return f'<nav class="toc" id="contents"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = str(value)
            css = VERDICT_CLASSES.get(text)
            cells.append(f'<td class="{css}">{html.escape(text)}</td>' if css else f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def html_figure(plot: Plot) -> str:
    if plot.skipped:
        return f'<p class="skipped">{html.escape(plot.title)}: not drawn ({html.escape(plot.skipped)}).</p>'
    data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
    return (f'<figure id="plot-{plot.name}"><img class="plot" alt="{html.escape(plot.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(plot.caption)}</figcaption></figure>')
