"""/dashboard: the web dashboard, a static single-page app served from the package.

No build step and nothing loaded from the internet: the JavaScript (ours, and Chart.js
vendored from npm in ``static/vendor``) ships inside the package. The pages hold no data of
their own: after sign-in they call the public API with the user's API key or JWT, so the
dashboard sees exactly what that credential may see. A strict Content-Security-Policy keeps
every script, style and request on this origin.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC = resources.files("dataintel.dashboard") / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
def dashboard_redirect() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=308)


@router.get("/dashboard/")
def dashboard() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"), headers=HEADERS)


def static_files() -> StaticFiles:
    """The app's scripts, styles and vendored libraries, mounted at /dashboard/static."""
    return StaticFiles(packages=[("dataintel.dashboard", "static")])
