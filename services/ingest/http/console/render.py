"""Pages rendered on the server: Jinja2 templates (autoescaped) from this package, one
Content-Security-Policy that lets the console load only its own scripts and styles, and the
few filters the templates share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.ingest.http.console.session import Viewer
from services.ingest.principal import Refused

HERE = Path(__file__).parent
STATIC = HERE / "static"
# Scripts and styles from /console/static only (no inline script, no CDN); SVG charts are
# part of the page; EventSource and fetch go to this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The API says no-referrer; with it a browser posts forms with `Origin: null`, and the
# console refuses forms from any origin but its own. Same-origin: nothing leaves the site.
HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "same-origin"}


def ago(value: datetime | str | None, now: datetime | None = None) -> str:
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else "in the future"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def stamp(value: datetime | str | None) -> str:
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def number(text: str, name: str, low: float, high: float) -> float | None:
    """A number from a form's field, where an empty field means "not given" (HTML forms send
    every field, filled or not)."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refused(422, "invalid_request", f"{name}: not a number") from None
    if not low <= value <= high:
        raise Refused(422, "invalid_request", f"{name}: between {low:g} and {high:g}")
    return value


def short(value: object, n: int = 8) -> str:
    return str(value)[:n]


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(ago=ago, stamp=stamp, short=short)


def page(request: Request, viewer: Viewer | None, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(viewer=viewer, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def fragment(template: str, **context: Any) -> HTMLResponse:
    """A piece of a page, fetched by the page's script (new turns of a conversation)."""
    return HTMLResponse(_env.get_template(template).render(**context), headers=HEADERS)
