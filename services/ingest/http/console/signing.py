"""Sign-in and sign-out pages. The token is posted once in a form body (never a URL), checked
by the API's own verifier, and exchanged for the session cookie (session.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.ingest.http.console.render import page
from services.ingest.http.console.session import (
    COOKIE,
    Signed,
    SignInNeeded,
    changing,
    current,
    form,
    secure_cookie,
    sign_in,
    sign_out,
)
from services.ingest.principal import AuthError, Refused

router = APIRouter(prefix="/console")


def home_of(is_admin: bool) -> str:
    return "/console" if is_admin else "/console/me"


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    try:
        viewer = await current(request)
    except SignInNeeded:
        return page(request, None, "sign_in.html", error=None)
    return RedirectResponse(home_of(viewer.is_admin), status_code=303)


@router.post("/sign-in")
async def sign_in_post(request: Request) -> Response:
    fields = await form(request)
    token = fields.get("token", "")
    if not token.strip():
        return page(request, None, "sign_in.html", status=422, error="paste a token first")
    try:
        value, session = await sign_in(request, token)
    except (AuthError, Refused) as exc:
        return page(request, None, "sign_in.html", status=exc.status, error=exc.message)
    answer = RedirectResponse(home_of("admin" in session.roles), status_code=303)
    max_age = max(int((session.expires_at - session.created_at).total_seconds()), 1)
    answer.set_cookie(COOKIE, value, max_age=max_age, path="/console", secure=secure_cookie(request),
                      httponly=True, samesite="strict")
    return answer


@router.post("/sign-out")
async def sign_out_post(request: Request, viewer: Signed) -> Response:
    await changing(request, viewer)
    await sign_out(request)
    answer = RedirectResponse("/console/sign-in", status_code=303)
    answer.delete_cookie(COOKIE, path="/console", secure=secure_cookie(request), httponly=True, samesite="strict")
    return answer
