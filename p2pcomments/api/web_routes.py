"""The browser side as HTTP routes: ``/embed.js`` (the widget's loader), ``/web/…`` (its ES modules,
served from the package's ``p2pcomments/web/`` directory) and ``/`` (the reader UI).

Rules:

1. Only the files shipped in ``p2pcomments/web/`` are served, listed once when the routes are
   built; a path that is not one of them is a 404, whatever it holds (``..``, encoded slashes).
2. The assets are public and static: any origin may load them (``Access-Control-Allow-Origin:
   *``, as a module script across origins needs), with ``X-Content-Type-Options: nosniff``.
3. The reader UI carries the daemon's API token in a ``<meta>`` element only when built with
   one: the daemon passes it on its 127.0.0.1 listener (behind the Host check, so a page on
   another name can't read it) and never on a public gateway, where the UI is read-only. The
   page allows scripts from its own origin only (Content-Security-Policy), so nothing a comment
   holds could read the token.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from p2pcomments.errors import NotFound

__all__ = ["WEB_MEDIA_TYPES", "web_asset", "web_assets", "web_routes"]

WEB_MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    ".png": "image/png",
}
_ASSET_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}
_READER_CSP: Final = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _media_type(name: str) -> str | None:
    for suffix, media_type in WEB_MEDIA_TYPES.items():
        if name.endswith(suffix):
            return media_type
    return None


def web_assets() -> dict[str, bytes]:
    """Every servable file of ``p2pcomments/web/`` by its path there (``vendor/…`` included)."""
    assets: dict[str, bytes] = {}
    root = resources.files("p2pcomments") / "web"

    def walk(directory: resources.abc.Traversable, prefix: str) -> None:
        for entry in directory.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif _media_type(entry.name) is not None:
                assets[prefix + entry.name] = entry.read_bytes()

    walk(root, "")
    return assets


def web_asset(assets: dict[str, bytes], name: str) -> Response:
    content = assets.get(name)
    media_type = _media_type(name)
    if content is None or media_type is None:
        raise NotFound(f"no such file: /web/{name}")
    return Response(content, media_type=media_type, headers=_ASSET_HEADERS)


def reader_page(token: str | None) -> str:
    meta = "" if token is None else f'<meta name="p2pc-token" content="{html.escape(token)}">'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>p2pcomments</title>{meta}"
        '<script type="module" src="/web/reader.js"></script></head>'
        '<body><main id="p2pc-reader"><noscript>This page needs JavaScript.</noscript></main>'
        "</body></html>\n"
    )


def web_routes(*, token: str | None) -> list[BaseRoute]:
    """The routes: ``/embed.js``, ``/web/{path}`` and the reader UI at ``/``, able to write
    when built with the API ``token`` (rule 3), read-only without."""
    assets = web_assets()

    async def embed(request: Request) -> Response:
        return web_asset(assets, "embed.js")

    async def asset(request: Request) -> Response:
        return web_asset(assets, request.path_params["path"])

    async def reader(request: Request) -> Response:
        return HTMLResponse(
            reader_page(token),
            headers={"Content-Security-Policy": _READER_CSP, "Cache-Control": "no-store"},
        )

    return [
        Route("/", reader, methods=["GET"]),
        Route("/embed.js", embed, methods=["GET"]),
        Mount("/web", routes=[Route("/{path:path}", asset, methods=["GET"])]),
    ]
