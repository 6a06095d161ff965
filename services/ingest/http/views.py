"""Port records -> response bodies. The routes decide what to answer; this is only how the
records the ports return are shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from contracts import ReplyGenerated, ReplyTokensGenerated, TurnRecorded
from convmem.memory.context import Context, speaker
from convmem.memory.retrieval import SearchHit, SearchResult, Stages
from convmem.ports import ConversationInfo, Delivery, ErasureStatus, Stats, UserSummary
from services.ingest.schemas import (
    ChatMessageView,
    ContextTurn,
    ContextView,
    ConversationDetail,
    ConversationMessages,
    ConversationView,
    DeliveryPartView,
    DeliveryView,
    ErasureView,
    MessageView,
    RecalledTurn,
    ReplyView,
    SearchHitView,
    SearchResponse,
    StatsView,
    TokenView,
    UsageView,
    UserSummaryView,
)


def message_view(t: TurnRecorded, delivery: Delivery | None = None) -> MessageView:
    return MessageView(message_id=t.message_id, seq=t.seq, role=t.role, content_type=t.content_type, text=t.text,
                       external_id=t.external_id, in_reply_to=t.in_reply_to, occurred_at=t.occurred_at,
                       metadata=t.metadata, language=t.language, intent=t.intent,
                       intent_confidence=t.intent_confidence,
                       delivery=None if delivery is None else delivery_view(delivery))


def delivery_view(d: Delivery) -> DeliveryView:
    return DeliveryView(state=d.state, status=d.status, error=d.error, parts=[
        DeliveryPartView(part=p.part, state=p.state, wamid=p.wamid, error_code=p.error_code, error=p.error,
                         statuses=p.statuses) for p in d.parts])


def reply_view(r: ReplyGenerated) -> ReplyView:
    return ReplyView(message_id=r.message_id, in_reply_to=r.in_reply_to, conversation_id=r.conversation_id,
                     text=r.text, sources=list(r.sources), model=r.model,
                     usage=UsageView(**r.usage.model_dump()), finish_reason=r.finish_reason,
                     occurred_at=r.occurred_at)


def token_view(t: ReplyTokensGenerated) -> TokenView:
    return TokenView(message_id=t.message_id, in_reply_to=t.in_reply_to, conversation_id=t.conversation_id,
                     offset=t.offset, text=t.text)


def _conversation_fields(c: ConversationInfo) -> dict[str, Any]:
    return {"conversation_id": c.conversation_id, "user_id": c.user_id, "channel": c.channel, "title": c.title,
            "title_source": c.title_source, "conversation_type": c.conversation_type, "status": c.status,
            "message_count": c.message_count, "created_at": c.created_at, "updated_at": c.updated_at,
            "last_message_at": c.last_message_at, "metadata": c.metadata}


def conversation_view(c: ConversationInfo) -> ConversationView:
    return ConversationView(**_conversation_fields(c))


Deliveries = Mapping[UUID, Delivery]


def _page(turns: Sequence[TurnRecorded], limit: int, deliveries: Deliveries) -> tuple[list[MessageView], int | None]:
    """Routes read limit + 1 turns: the extra one only says there is a next page."""
    page = turns[:limit]
    return ([message_view(t, deliveries.get(t.message_id)) for t in page],
            page[-1].seq if len(turns) > limit else None)


def messages_page(conversation_id: UUID, turns: Sequence[TurnRecorded], limit: int,
                  deliveries: Deliveries | None = None) -> ConversationMessages:
    messages, next_after_seq = _page(turns, limit, deliveries or {})
    return ConversationMessages(conversation_id=conversation_id, messages=messages, next_after_seq=next_after_seq)


def conversation_detail(c: ConversationInfo, turns: Sequence[TurnRecorded], limit: int,
                        deliveries: Deliveries | None = None) -> ConversationDetail:
    messages, next_after_seq = _page(turns, limit, deliveries or {})
    return ConversationDetail(**_conversation_fields(c), messages=messages, next_after_seq=next_after_seq)


def speaker_of(t: TurnRecorded) -> str | None:
    name = t.metadata.get("speaker")
    return name if isinstance(name, str) and name.strip() else None


def _hit_view(h: SearchHit) -> SearchHitView:
    return SearchHitView(message_id=h.turn.message_id, external_id=h.turn.external_id,
                         conversation_id=h.turn.conversation_id, seq=h.turn.seq, role=h.turn.role, text=h.turn.text,
                         occurred_at=h.turn.occurred_at, score=h.score, speaker=speaker_of(h.turn),
                         matched_by=dict(h.ranks),
                         context=[message_view(c) for c in h.context])


def search_response(query: str, stages: Stages, result: SearchResult) -> SearchResponse:
    return SearchResponse(
        query=query, mode=stages.mode, stages=stages.names(),
        timeframe=None if result.timeframe is None else {"since": result.timeframe.since,
                                                          "until": result.timeframe.until},
        speakers=result.speakers, hits=[_hit_view(h) for h in result.hits])


def _context_turn(t: TurnRecorded) -> ContextTurn:
    return ContextTurn(message_id=t.message_id, conversation_id=t.conversation_id, seq=t.seq, role=t.role,
                       speaker=speaker(t), occurred_at=t.occurred_at, text=t.text)


def context_view(conversation_id: UUID | None, ctx: Context, tokenizer: str) -> ContextView:
    return ContextView(
        conversation_id=conversation_id, question=ctx.question, block=ctx.block(),
        messages=[ChatMessageView(role=m.role, content=m.content) for m in ctx.messages()],
        summary=ctx.summary.text if ctx.summary else None,
        recalled=[RecalledTurn(**_context_turn(r.turn).model_dump(), score=r.score,
                               context=[_context_turn(c) for c in r.context]) for r in ctx.recalled],
        recent=[_context_turn(t) for t in ctx.recent], sources=ctx.sources, tokens=ctx.tokens, budget=ctx.budget,
        tokenizer=tokenizer)


def stats_view(tenant_id: str, user_id: str | None, st: Stats) -> StatsView:
    return StatsView(scope="tenant" if user_id is None else "user", tenant_id=tenant_id, user_id=user_id,
                     users=st.users, conversations=st.conversations, messages=st.messages, by_role=st.by_role,
                     reply_expected=st.reply_expected, replied=st.replied, success_rate=st.success_rate,
                     first_interaction=st.first_interaction, last_interaction=st.last_interaction)


def erasure_view(e: ErasureStatus) -> ErasureView:
    return ErasureView(request_id=e.request_id, user_id=e.user_id, status=e.status, requested_at=e.requested_at,
                       completed_at=e.completed_at, counts=e.counts)


def user_summary_view(user_id: str, s: UserSummary) -> UserSummaryView:
    return UserSummaryView(user_id=user_id, conversations=s.conversations, messages=s.messages,
                           user_messages=s.user_messages, first_interaction=s.first_at, last_interaction=s.last_at,
                           preferred_language=s.preferred_language, languages=s.languages,
                           common_intents=[{"intent": i, "count": n} for i, n in s.common_intents()],
                           updated_at=s.updated_at)
