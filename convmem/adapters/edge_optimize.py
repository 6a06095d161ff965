"""Optimize one Qdrant Edge shard folder in a process of its own: `python -m
convmem.adapters.edge_optimize FOLDER`. Optimizing holds the GIL for as long as it runs
(seconds to minutes), so a serving process hands a copy of its shard to this one instead of
stalling its own event loop. Prints the shard's segments, points and indexed points before
and after, as JSON."""

from __future__ import annotations

import json
import sys
import time


def optimize(folder: str) -> dict[str, object]:
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(folder)
    try:
        before = shard.info()
        started = time.perf_counter()
        shard.optimize()
        seconds = time.perf_counter() - started
        after = shard.info()
        shard.flush()
    finally:
        shard.close()
    return {"seconds": round(seconds, 3),
            "before": [before.segments_count, before.points_count, before.indexed_vectors_count],
            "after": [after.segments_count, after.points_count, after.indexed_vectors_count]}


if __name__ == "__main__":
    print(json.dumps(optimize(sys.argv[1])))
