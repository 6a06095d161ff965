"""`convmem run all` on two cores: which consumer groups go to the companion process."""

from __future__ import annotations

from composition.companion import INDEX_FREE_GROUPS, processes_for, split_groups
from composition.roles import ROLES, consumer_groups


def test_the_companion_takes_the_groups_that_need_no_index_and_the_parent_keeps_the_rest() -> None:
    mine, theirs = split_groups(ROLES, "p")
    every = {g.removeprefix("p.") for g, _ in consumer_groups(ROLES, "p")}
    assert set(mine) | set(theirs) == every and not set(mine) & set(theirs)
    assert set(theirs) == set(INDEX_FREE_GROUPS)  # recording, statuses, upkeep
    assert {"indexer.embed", "responder"} <= set(mine)  # the index's one owner embeds and answers
    assert split_groups(("ingest",), "p") == ([], [])  # nothing to hand over


def test_run_all_uses_one_process_unless_told() -> None:
    assert processes_for(1) == 1 and processes_for(2) == 2
    assert processes_for(None) == 1
