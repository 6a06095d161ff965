"""The analytics rollups on the real database: every figure of a small known history, then
what a refresh does with later changes (a new turn, a published reply, a delivery status,
a deleted conversation, an erased user), and that refreshing twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts import OFFLINE_MODEL, DeliveryStatusChanged, MessageReceived, ReplyGenerated, TokenUsage
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.analytics import PgAnalytics
from convmem.ports import Enrichment, SendPart
from convmem.ports.analytics import AnalyticsScope, PeriodFacts
from services.ingest.analytics import PeriodReport
from tests.integration.support import unique

pytestmark = pytest.mark.stack
D1 = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday
D2 = D1 + timedelta(days=1)
D9 = D1 + timedelta(days=7)  # the next week


async def user_turn(store: PostgresStorage, tenant: str, user: str, conv: uuid.UUID, when: datetime, *,
                    channel: str = "http", language: str | None = "en", intent: str | None = "question",
                    reply_expected: bool = True) -> MessageReceived:
    event = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                            channel=channel, text="hello there", occurred_at=when,  # type: ignore[arg-type]
                            reply_expected=reply_expected)
    await store.turns.record_turn(event, Enrichment(language, intent, 0.9 if intent else None))
    return event


async def reply(store: PostgresStorage, to: MessageReceived, latency_ms: int, *, model: str = "m",
                published: bool = True, prompt: int = 10, completion: int = 4) -> ReplyGenerated:
    event = ReplyGenerated(tenant_id=to.tenant_id, user_id=to.user_id, conversation_id=to.conversation_id,
                           message_id=uuid.uuid4(), in_reply_to=to.message_id, channel=to.channel, text="sure",
                           model=model, latency_ms=latency_ms, occurred_at=to.occurred_at + timedelta(seconds=2),
                           usage=TokenUsage(prompt_tokens=prompt, completion_tokens=completion,
                                            total_tokens=prompt + completion))
    await store.replies.claim_reply(event)
    if published:
        await store.replies.mark_reply_published(to.message_id)
    await store.turns.record_turn(event)
    return event


def facts(found: list[PeriodFacts]) -> dict[date, dict[str, dict[str, int]]]:
    return {p.start: p.facts for p in found}


def latency(found: list[PeriodFacts]) -> dict[date, dict[str, float | None]]:
    return {p.start: p.latency_ms for p in found}


async def test_every_figure_of_a_known_history_and_what_later_changes_do(store: PostgresStorage) -> None:
    analytics = PgAnalytics(store.pool)
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    c1, c2, c3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    q1 = await user_turn(store, tenant, ana, c1, D1, channel="whatsapp", language="en", intent="greeting")
    r1 = await reply(store, q1, 40)
    q2 = await user_turn(store, tenant, ana, c1, D1 + timedelta(minutes=5), channel="whatsapp", language="de",
                         intent="order")
    r2 = await reply(store, q2, 80, prompt=20, completion=6)
    qb = await user_turn(store, tenant, ben, c2, D1, language="en", intent="order")  # answered later
    q4 = await user_turn(store, tenant, ben, c3, D2, language="en", intent=None)
    await reply(store, q4, 3, model=OFFLINE_MODEL, prompt=0, completion=0)  # offline notice: not timed
    await user_turn(store, tenant, ben, c3, D2 + timedelta(minutes=1), reply_expected=False)
    await user_turn(store, unique("t"), ana, uuid.uuid4(), D1)  # another tenant, same user name

    # WhatsApp: r1 sent, delivered and read; r2 refused by the Cloud API.
    p1 = SendPart(r1.message_id, tenant, ana, c1, 0, 1)
    p2 = SendPart(r2.message_id, tenant, ana, c1, 0, 1)
    assert await store.sends.claim_send(p1, 60) == "claimed" and await store.sends.claim_send(p2, 60) == "claimed"
    await store.sends.record_sent(p1, "wamid.one")
    await store.sends.record_failed(p2, 131026, "undeliverable")
    for status in ("delivered", "read", "read"):  # Meta delivers at least once
        await store.deliveries.record_delivery_status(DeliveryStatusChanged(
            tenant_id=tenant, user_id=ana, conversation_id=c1, external_id="wamid.one", status=status,
            occurred_at=D1 + timedelta(minutes=1)))

    await analytics.refresh(tenant)
    found = await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D9.date())
    by_day = facts(found)
    assert set(by_day) == {D1.date(), D2.date()}
    day1 = by_day[D1.date()]
    assert day1["messages"] == {"user/whatsapp": 2, "assistant/whatsapp": 2, "user/http": 1}
    assert day1["intent"] == {"greeting": 1, "order": 2}
    assert day1["language"] == {"en": 2, "de": 1}
    assert latency(found)[D1.date()] == {"count": 2, "p50": 60.0, "p95": 78.0}  # percentile_cont of 40 and 80
    assert day1["replies"] == {"expected": 3, "answered": 2}
    assert day1["tokens"] == {"prompt": 30, "completion": 10}
    assert day1["conversations"] == {"new": 2}
    assert day1["active"] == {"": 2}
    assert day1["whatsapp"] == {"sent": 1, "delivered": 1, "read": 1, "failed": 1}
    day2 = by_day[D2.date()]
    assert day2["messages"] == {"user/http": 2, "assistant/http": 1}
    assert day2["replies"] == {"expected": 1, "answered": 1, "offline": 1}
    assert latency(found)[D2.date()] == {} and "tokens" not in day2
    assert day2["active"] == {"": 1} and day2["conversations"] == {"new": 1}

    report = PeriodReport(D1.date(), D2.date(), day1, latency(found)[D1.date()])
    assert report.success_rate() == round(2 / 3, 4)
    assert report.messages_by(0) == {"assistant": 2, "user": 3} and report.messages_by(1) == {"http": 1, "whatsapp": 4}

    # A week: sums of its days, and its users counted once.
    [week] = await analytics.period_facts(AnalyticsScope(tenant, None), "week", D1.date(), D9.date())
    assert week.start == D1.date() and week.facts["active"] == {"": 2}
    assert week.facts["messages"] == {"user/whatsapp": 2, "assistant/whatsapp": 2, "user/http": 3,
                                      "assistant/http": 1}
    # One user: only its own turns, in this tenant only.
    ben_days = facts(await analytics.period_facts(AnalyticsScope(tenant, ben), "day", D1.date(), D9.date()))
    assert ben_days[D1.date()]["messages"] == {"user/http": 1} and ben_days[D1.date()]["replies"] == {"expected": 1}
    [ben_week] = await analytics.period_facts(AnalyticsScope(tenant, ben), "week", D1.date(), D9.date())
    assert ben_week.facts["active"] == {"": 1} and ben_week.facts["conversations"] == {"new": 2}

    # Refreshing again with nothing new changes nothing.
    await analytics.refresh(tenant)
    assert facts(await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D9.date())) == by_day

    # Later changes: ben's question answered late, a new turn, a failed status; then a
    # deleted conversation and an erased user leave the figures.
    await reply(store, qb, 2000)
    await store.deliveries.record_delivery_status(DeliveryStatusChanged(
        tenant_id=tenant, user_id=ana, conversation_id=c1, external_id="wamid.one", status="failed",
        occurred_at=D1 + timedelta(minutes=2)))
    await user_turn(store, tenant, ana, c1, D2 + timedelta(hours=3), channel="whatsapp", intent="thanks")
    await analytics.refresh(tenant)
    found = await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D9.date())
    after = facts(found)
    assert after[D1.date()]["whatsapp"] == {"sent": 1, "delivered": 1, "read": 1, "failed": 2}
    assert after[D1.date()]["replies"] == {"expected": 3, "answered": 3}
    assert latency(found)[D1.date()]["count"] == 3 and latency(found)[D1.date()]["p50"] == 80.0
    assert after[D2.date()]["messages"] == {"user/http": 2, "assistant/http": 1, "user/whatsapp": 1}
    assert after[D2.date()]["active"] == {"": 2} and after[D2.date()]["intent"] == {"question": 1, "thanks": 1}

    await store.conversations.delete_conversation(tenant, c2)
    await analytics.refresh(tenant)
    gone = facts(await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D9.date()))
    assert gone[D1.date()]["messages"] == {"user/whatsapp": 2, "assistant/whatsapp": 2}
    assert gone[D1.date()]["active"] == {"": 1} and gone[D1.date()]["conversations"] == {"new": 1}
    assert gone[D1.date()]["replies"] == {"expected": 2, "answered": 2}


async def test_an_erased_user_leaves_the_user_and_tenant_figures(store: PostgresStorage) -> None:
    analytics = PgAnalytics(store.pool)
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    await reply(store, await user_turn(store, tenant, ana, uuid.uuid4(), D1), 120)
    await user_turn(store, tenant, ben, uuid.uuid4(), D1)
    await analytics.refresh(tenant)
    request = uuid.uuid4()
    await store.privacy.request_erasure(request, tenant, ana, "admin", datetime.now(UTC))
    await store.privacy.erase_subject(request, tenant, ana)
    await analytics.refresh(tenant)
    [day] = await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D2.date())
    assert day.facts["messages"] == {"user/http": 1} and day.facts["active"] == {"": 1} and day.latency_ms == {}
    assert await analytics.period_facts(AnalyticsScope(tenant, ana), "day", D1.date(), D2.date()) == []


async def test_turns_per_minute_counts_what_was_recorded_lately(store: PostgresStorage) -> None:
    analytics = PgAnalytics(store.pool)
    tenant, ana = unique("t"), unique("ana")
    question = await user_turn(store, tenant, ana, uuid.uuid4(), D1)  # occurred long ago, recorded now
    await reply(store, question, 50)
    now = datetime.now(UTC)
    counts = await analytics.turns_per_minute(AnalyticsScope(tenant, None), now - timedelta(minutes=5),
                                              now + timedelta(minutes=1))
    assert sorted((c.role, c.turns) for c in counts) in ([("assistant", 1), ("user", 1)],)
    assert await analytics.turns_per_minute(AnalyticsScope(tenant, unique("x")), now - timedelta(minutes=5),
                                            now + timedelta(minutes=1)) == []


async def test_latency_percentiles_are_exact_below_100_ms_and_within_half_a_percent_above(
        store: PostgresStorage) -> None:
    analytics = PgAnalytics(store.pool)
    tenant, ana = unique("t"), unique("ana")
    values = [7, 99, 100, 150, 999, 1234, 60_000]
    for i, ms in enumerate(values):
        await reply(store, await user_turn(store, tenant, ana, uuid.uuid4(), D1 + timedelta(days=i)), ms)
    await analytics.refresh(tenant)
    found = latency(await analytics.period_facts(AnalyticsScope(tenant, None), "day", D1.date(), D9.date()))
    for i, ms in enumerate(values):
        got = found[(D1 + timedelta(days=i)).date()]
        assert got["count"] == 1 and got["p50"] is not None and got["p95"] is not None
        assert abs(got["p50"] - ms) <= ms * 0.005 and got["p50"] == got["p95"]
        if ms < 100:
            assert got["p50"] == ms
    # A week (stored) and the same week cut by the range (from the facts of the days asked for).
    [week] = await analytics.period_facts(AnalyticsScope(tenant, None), "week", D1.date(), D9.date())
    assert week.latency_ms["count"] == 7 and abs((week.latency_ms["p50"] or 0) - 150) <= 0.75
    [cut] = await analytics.period_facts(AnalyticsScope(tenant, None), "week", D2.date(), D9.date())
    assert cut.start == D1.date() and cut.latency_ms["count"] == 6  # without the 7 ms of the Monday
    assert abs((cut.latency_ms["p50"] or 0) - (150 + 999) / 2) <= 574.5 * 0.005
    [mine] = await analytics.period_facts(AnalyticsScope(tenant, ana), "week", D1.date(), D9.date())
    assert mine.latency_ms == week.latency_ms
