"""The MCP server (Model Context Protocol, the official SDK's FastMCP over Streamable HTTP),
mounted on the ingest app at /mcp, so agents can use the memory as tools: search it, get
the context block, list conversations and read one.

Each tool is the REST read it mirrors (services.ingest.memory) and answers with the same
body, under the same rules: every HTTP request to /mcp must carry a bearer JWT the REST
API would take, checked by the same verifier under the same rate limits (401 or 429 before
the MCP layer sees it), and each tool call acts as the principal of the request carrying it. Stateless and JSON: any ingest replica can answer
any request, no session is kept between them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any, Literal
from uuid import UUID

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.server import StreamableHTTPASGIApp
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.values import SEQ_MAX
from convmem.memory.retrieval import Stages
from convmem.settings import IngestSettings
from services.ingest.cursor import CursorError
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import Credentials, client_address, edge_of
from services.ingest.http.errors import ApiError, error_response
from services.ingest.http.views import context_view, conversation_detail, conversation_view, search_response
from services.ingest.memory import context_block, list_conversations, read_conversation, search_memory
from services.ingest.principal import AuthError, Principal, Refused
from services.ingest.schemas import ContextView, ConversationDetail, ConversationPage, SearchResponse

MCP_PATH = "/mcp"
MAX_QUERY = 2000  # as GET /v1/search and /v1/context take it
INSTRUCTIONS = (
    "Long-term memory of a user's conversations. search_memory finds turns by meaning and words "
    "(dated, with speakers); get_context returns the block to put before your model's prompt for "
    "the next turn of a conversation; list_conversations and read_conversation browse the history."
)


class BearerGuard:
    """Checks the bearer token of every MCP request as the REST API does (the same verifier
    and rate limits; 401 with WWW-Authenticate: Bearer, or 429), before the MCP layer reads
    it, and leaves the principal on the request for the tools."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            credentials = Credentials(request.headers.get("authorization"), client_address(request),
                                      edge_of(request))
            try:
                who = await credentials.principal()
            except AuthError as exc:
                response = error_response(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            except ApiError as exc:
                await error_response(exc.status, exc.code, exc.message, headers=exc.headers)(scope, receive, send)
                return
            request.state.principal = who  # scope["state"]: the transport's own Request sees it
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if scope["method"] == "POST" and media != "application/json":
                # The SDK answers this in plain text; the document promises an ErrorBody.
                await error_response(415, "unsupported_media_type", "send a JSON-RPC message as application/json"
                                     )(scope, receive, send)
                return
            scope = with_json_accepted(scope)
        await self.app(scope, receive, send)


def with_json_accepted(scope: Scope) -> Scope:
    """A client that names no media type (no Accept, or */*) takes what it is given: the SDK
    would answer it 406, which refuses a valid request over a header most HTTP clients leave
    out. A client that asks for something else explicitly still gets its 406."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"accept"]
    accept = b", ".join(v for k, v in scope["headers"] if k == b"accept").strip()
    if accept in (b"", b"*/*"):
        return {**scope, "headers": [*headers, (b"accept", b"application/json, text/event-stream")]}
    return scope


def build_mcp(settings: IngestSettings, ports: Callable[[], EdgePorts]) -> FastMCP:
    server = FastMCP("convmem", instructions=INSTRUCTIONS, streamable_http_path=MCP_PATH, stateless_http=True,
                     json_response=True, host=settings.http_host, log_level="WARNING")
    # FastMCP takes no version and the SDK then reports its own in `serverInfo.version`;
    # clients should see which convmem answers them.
    server._mcp_server.version = package_version("convmem")

    def principal(ctx: Context) -> Principal:  # type: ignore[type-arg]
        request = ctx.request_context.request
        who = getattr(request.state, "principal", None) if isinstance(request, Request) else None
        if not isinstance(who, Principal):  # only reachable past the guard, which always sets it
            raise ToolError("unauthenticated: no bearer token was checked for this request")
        return who

    async def acting(ctx: Context, read: Callable[[Principal], Awaitable[Any]]) -> Any:  # type: ignore[type-arg]
        try:
            return await read(principal(ctx))
        except Refused as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None

    @server.tool(name="search_memory", description=(
        "Search the user's memory: turns ranked by meaning and words, with dates, speakers and the turns "
        "around each hit."))
    async def search_memory_tool(ctx: Context, query: str, k: int = 10,  # type: ignore[type-arg]
                                 conversation_id: UUID | None = None, since: datetime | None = None,
                                 until: datetime | None = None, user_id: str | None = None) -> SearchResponse:
        if not query.strip() or len(query) > MAX_QUERY or not 1 <= k <= 100:
            raise ToolError(f"query must have 1 to {MAX_QUERY} characters and k must be between 1 and 100")
        for name, bound in (("since", since), ("until", until)):
            if bound is not None and bound.tzinfo is None:
                raise ToolError(f"{name} must carry a UTC offset, e.g. 2026-11-23T10:00:00Z")
        edge = ports()
        stages = edge.retriever.default if edge.retriever is not None else Stages()
        result = await acting(ctx, lambda who: search_memory(
            edge, who, query, k=k, now=datetime.now(UTC), stages=stages, user_id=user_id,
            conversation_id=conversation_id, since=since, until=until))
        return search_response(query, stages, result)

    @server.tool(name="get_context", description=(
        "The context block for the next turn of a conversation, as convmem's own responder would send it: "
        "summary, recalled memories (dated, with speakers and ids) and the recent turns, under a token budget."))
    async def get_context(ctx: Context, conversation_id: UUID | None = None,  # type: ignore[type-arg]
                          query: str | None = None, budget: int | None = None,
                          user_id: str | None = None) -> ContextView:
        if budget is not None and not 128 <= budget <= 200_000:
            raise ToolError("budget must be between 128 and 200000 tokens")
        if query is not None and len(query) > MAX_QUERY:
            raise ToolError(f"query must have at most {MAX_QUERY} characters")
        edge = ports()
        used, built = await acting(ctx, lambda who: context_block(edge, who, now=datetime.now(UTC),
                                                                  conversation_id=conversation_id, question=query,
                                                                  budget=budget, user_id=user_id))
        return context_view(used, built, edge.context.tokens.name if edge.context else "")

    @server.tool(name="list_conversations", description=(
        "The user's conversations, newest first (pass next_cursor back for more)."))
    async def list_conversations_tool(ctx: Context, limit: int = 20,  # type: ignore[type-arg]
                                      cursor: str | None = None,
                                      status: Literal["active", "archived"] | None = None,
                                      user_id: str | None = None) -> ConversationPage:
        if not 1 <= limit <= 200:
            raise ToolError("limit must be between 1 and 200")
        edge = ports()
        try:
            page, next_cursor = await acting(ctx, lambda who: list_conversations(
                edge, who, limit=limit, user_id=user_id, status=status, cursor=cursor))
        except CursorError as exc:
            raise ToolError(str(exc)) from None
        return ConversationPage(conversations=[conversation_view(c) for c in page], next_cursor=next_cursor)

    @server.tool(name="read_conversation", description=(
        "One conversation: its metadata and its turns in order, a page at a time (pass next_after_seq back "
        "as after_seq for more)."))
    async def read_conversation_tool(ctx: Context, conversation_id: UUID, after_seq: int = 0,  # type: ignore[type-arg]
                                     limit: int = 100) -> ConversationDetail:
        if not 0 <= after_seq <= SEQ_MAX or not 1 <= limit <= 500:
            raise ToolError(f"after_seq must be between 0 and {SEQ_MAX} and limit between 1 and 500")
        edge = ports()
        info, turns = await acting(ctx, lambda who: read_conversation(edge, who, conversation_id,
                                                                      after_seq=after_seq, limit=limit))
        return conversation_detail(info, turns, limit)

    return server


def mcp_route(server: FastMCP) -> Route:
    """The MCP endpoint as a route of the ingest app, behind the bearer guard. Its session
    manager must run while the app serves (create_app's lifespan)."""
    server.streamable_http_app()  # creates the session manager the endpoint hands requests to
    return Route(MCP_PATH, endpoint=BearerGuard(StreamableHTTPASGIApp(server.session_manager)))


def mcp_operations() -> dict[str, Any]:
    """/mcp as the OpenAPI document shows it (the SDK's endpoint is not a FastAPI route, so it
    is described here): one POST carrying a JSON-RPC 2.0 message, answered in JSON."""
    error = {"$ref": "#/components/schemas/ErrorBody"}
    # What the SDK itself requires of a message; the rest (ids, each method's params) it answers
    # with a JSON-RPC error in a 200, as JSON-RPC says.
    rpc = {"type": "object", "required": ["jsonrpc", "method"], "description": "a JSON-RPC 2.0 request or notification",
           "properties": {"jsonrpc": {"const": "2.0"}, "method": {"type": "string"}, "params": {"type": "object"}}}
    answer = {"type": "object", "additionalProperties": True,
              "description": "a JSON-RPC 2.0 response (result or error)"}
    return {"post": {
        "tags": ["mcp"], "operationId": "mcp_post", "summary": "Model Context Protocol (Streamable HTTP)",
        "description": INSTRUCTIONS + " Send `Accept: application/json, text/event-stream`; see the MCP "
                                      "specification for the messages (initialize, tools/list, tools/call).",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": rpc}}},
        "responses": {
            "200": {"description": "the JSON-RPC response", "content": {"application/json": {"schema": answer}}},
            "202": {"description": "a notification or response, accepted"},
            **{str(s): {"description": d, "content": {"application/json": {"schema": error if s in (401, 415, 429)
                                                                                else answer}}}
               for s, d in ((400, "not a JSON-RPC message"), (401, "no valid bearer token"),
                            (406, "the Accept header does not take JSON"), (415, "not sent as application/json"),
                            (429, "rate limited"))},
        }}}
