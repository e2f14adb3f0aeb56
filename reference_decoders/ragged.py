"""Rows leaving a batch: the speculative modes decode each row until its own EOS or max_new_tokens.

A finished row leaves the batch at once (`ModelAdapter.select_rows`), so later forwards neither
compute nor count its tokens; the rows still decoding keep their order.
"""

from __future__ import annotations

from reference_decoders.adapter import ModelAdapter
from reference_decoders.output import TokenStream


def leave_finished(adapter: ModelAdapter, state, streams: list[TokenStream], rows: list[int], *per_row):
    """Drop the batch rows whose stream is done from the state and from each per-row sequence in
    `per_row` (lists, or tensors indexed by batch row). -> (rows still decoding, *per_row kept)."""
    keep = [i for i, row in enumerate(rows) if not streams[row].done]
    if len(keep) == len(rows):
        return (rows, *per_row)
    if keep:
        adapter.select_rows(state, keep)
    kept = [[items[i] for i in keep] if isinstance(items, list) else None if items is None else items[keep] for items in per_row]
    return ([rows[i] for i in keep], *kept)
