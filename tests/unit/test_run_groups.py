"""`convmem run ROLE --groups ...`: a process that consumes only some of its role's consumer
groups, so that each group can be its own Deployment scaled on its own lag."""

from __future__ import annotations

import pytest

from composition.cli import main
from composition.resources import Resources
from composition.roles import ROLES, RoleSettings, build_broker, check_groups, consumer_groups, declare
from convmem.delivery import DeliveryPolicy
from convmem.settings import ConfigError, ResponderSettings, load

UNREACHABLE = "127.0.0.1:9"  # declared only: nothing here connects
NO_SETTINGS = RoleSettings()


def _declared(roles: list[str], only: set[str] | None,
              settings: RoleSettings = NO_SETTINGS) -> tuple[list[tuple[str, str]], int, list[str]]:
    policy = DeliveryPolicy()
    broker = build_broker(UNREACHABLE, policy)
    subs = declare(broker, policy, roles, Resources(), settings, "convmem", UNREACHABLE, only_groups=only).subscriptions
    return subs.groups, len(broker.subscribers), [k.group_id for k in subs.keyed]


def test_only_the_selected_groups_are_subscribed() -> None:
    groups, subscribers, keyed = _declared(["indexer"], {"indexer.embed"})
    assert (groups, subscribers, keyed) == ([("convmem.indexer.embed", "conv.turns.v1")], 1, [])
    groups, subscribers, _ = _declared(["indexer"], {"indexer.record-replies", "indexer.statuses"})
    assert sorted(groups) == [("convmem.indexer.record-replies", "conv.replies.v1"),
                              ("convmem.indexer.statuses", "conv.statuses.v1")]
    assert subscribers == 2
    # Without a selection the role consumes as all of its groups, as before.
    all_groups, _, _ = _declared(["indexer"], None)
    assert len(all_groups) == 5


def test_the_key_ordered_consumers_are_selected_too() -> None:
    # The responder answers many conversations at once through consumers of its own
    # (convmem.delivery.keyed), not FastStream subscribers: the selection reaches them as well.
    responder = load(ResponderSettings, _env_file=None, kafka_bootstrap=UNREACHABLE,
                     database_url="postgresql://x/y", max_in_flight=8)
    groups, subscribers, keyed = _declared(["responder"], {"responder.upkeep"}, RoleSettings(responder=responder))
    assert groups == [("convmem.responder.upkeep", "conv.turns.v1")]
    assert (subscribers, keyed) == (0, ["convmem.responder.upkeep"])


def test_every_declared_group_can_be_selected_alone() -> None:
    for group, topic in consumer_groups(ROLES, "convmem"):
        name = group.removeprefix("convmem.")
        role = name.split(".")[0]
        check_groups([role], "convmem", [name])
        assert _declared([role], {name})[0] == [(group, topic)]


def test_unknown_groups_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        check_groups(["indexer"], "convmem", ["indexer.embed", "convmem.indexer.statuses", "responder"])
    message = str(err.value)
    assert "convmem.indexer.statuses, responder" in message  # the prefixed form and another role's group
    assert "valid: indexer.record-inbound, indexer.record-replies, indexer.statuses, indexer.amend, indexer.embed" in message
    with pytest.raises(ConfigError, match="consume nothing"):
        check_groups(["ingest"], "convmem", ["ingest"])


def test_the_command_line_refuses_an_unknown_group_before_connecting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"KAFKA_BOOTSTRAP": UNREACHABLE, "DATABASE_URL": "postgresql://u@127.0.0.1:9/none"}.items():
        monkeypatch.setenv(f"CONVMEM_{name}", value)
    assert main(["run", "responder", "--groups", "responder.upkeep,responder.replies"]) == 2
    err = capsys.readouterr().err
    assert "unknown consumer group(s) for role(s) responder: responder.replies" in err
    assert "valid: responder, responder.upkeep" in err
