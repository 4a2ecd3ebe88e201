"""The normal form of a web page's URL: what a page thread is named by (protocol/SPEC.md §10.1).

Two people who copy a blog post's address from different places (a feed, a share button, the
address bar) must arrive at the same thread, so the URL is first brought to one text. Rules, in
the order they apply (SPEC §10.1 is the normative statement, `protocol/vectors/page_urls.json`
the conformance suite):

1. The input is text of at most `MAX_INPUT_CHARS` characters. Leading and trailing ASCII white
   space is removed; any other control character (C0, DEL, C1) or a lone surrogate is refused
   (``bad-character``). The text is brought to Unicode NFC.
2. The scheme (case-insensitive) is ``http`` or ``https`` (``unsupported-scheme``), followed by
   ``//`` (``not-a-url``). Everything from the first ``#`` (the fragment) is dropped.
3. The authority loses its user information (up to the last ``@``). The port, if any, is decimal
   digits up to 65535 (``bad-port``); it is dropped when empty or the scheme's default (80 for
   http, 443 for https) and otherwise written without leading zeros.
4. The host is not empty (``no-host``), not an IP literal in brackets and holds no ``%``
   (``bad-host``); one trailing dot is dropped. An ASCII host is lowercased; a host with any other
   character is mapped by UTS #46 (non-transitional) and each label holding non-ASCII becomes its
   IDNA 2008 A-label (``xn--…``). Every label is then 1-63 characters of ``a-z 0-9 - _``; a host
   whose last label is all digits is an IPv4 address in canonical dotted-decimal form. The host
   is at most 253 characters (``too-long``).
5. Path and query are percent-normalised: an escape ``%XY`` of an unreserved character
   (``A-Z a-z 0-9 - . _ ~``) is decoded; other escapes are kept with uppercase hex; a ``%`` that
   starts no escape becomes ``%25``; a character outside RFC 3986's set for that component (the
   path: unreserved, sub-delims, ``:`` ``@`` and ``/``; the query: those and ``?``) is written
   as the ``%XY`` escapes of its UTF-8 bytes, uppercase.
6. Dot segments are removed (RFC 3986 §5.2.4), then every trailing ``/``; an empty path is ``/``.
7. The query is split on ``&``: empty parameters and tracking parameters (a name starting with
   ``utm_``, or one of `TRACKING_PARAMETERS`; names compared in ASCII lowercase) are dropped, the
   others kept in their order. An empty query is dropped, with its ``?``.
8. The result is ``scheme://host[:port]path[?query]``: ASCII only, at most `MAX_URL_BYTES`
   (``too-long``). Normalising a normal URL gives it back unchanged.

``http`` and ``https``, and ``www.`` and no ``www.``, stay distinct: a page that answers under
several URLs declares aliases instead (SPEC §10.4).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import idna

from p2pcomments.errors import PageUrlError

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_URL_BYTES",
    "TRACKING_PARAMETERS",
    "TRACKING_PREFIXES",
    "normalise_page_url",
    "page_site",
]

MAX_URL_BYTES: Final = 2048  # the thread payload's url limit (SPEC §2)
MAX_HOST_CHARS: Final = 253  # the thread payload's site limit (SPEC §2)
MAX_INPUT_CHARS: Final = 8192  # refused before any other work

TRACKING_PREFIXES: Final = ("utm_",)
TRACKING_PARAMETERS: Final = frozenset(
    {
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "dclid",
        "fbclid",
        "gbraid",
        "gclid",
        "gclsrc",
        "igshid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "msclkid",
        "oly_anon_id",
        "oly_enc_id",
        "ttclid",
        "twclid",
        "vero_id",
        "wbraid",
        "yclid",
    }
)

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BAD_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ASCII_WHITE_SPACE: Final = "\t\n\f\r "
_LABEL: Final = re.compile(r"[a-z0-9_\-]{1,63}")
_DIGITS: Final = re.compile(r"[0-9]+")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE: Final = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE: Final = _PATH_SAFE | frozenset("?")


def _fail(reason: str, message: str) -> PageUrlError:
    return PageUrlError(message, reason=reason)


def normalise_page_url(url: str) -> str:
    """The normal form of ``url`` (rules 1-8 above), or `PageUrlError` naming what is wrong."""
    if type(url) is not str:
        raise _fail("not-a-url", "a page URL is text")
    if len(url) > MAX_INPUT_CHARS:
        raise _fail("too-long", f"the URL is {len(url)} characters, the limit is {MAX_INPUT_CHARS}")
    text = url.strip(_ASCII_WHITE_SPACE)
    if _BAD_CHARACTERS.search(text):
        raise _fail("bad-character", "the URL contains a control character")
    text = unicodedata.normalize("NFC", text)
    match = _SCHEME.match(text)
    if match is None:
        raise _fail("not-a-url", f"{_shown(text)} has no scheme (https://…)")
    scheme = match.group()[:-1].lower()
    if scheme not in _DEFAULT_PORTS:
        raise _fail("unsupported-scheme", f"a page URL is http or https, not {scheme}")
    rest = text[match.end() :]
    if not rest.startswith("//"):
        raise _fail("not-a-url", f"{_shown(text)} has no // after {scheme}:")
    rest = rest[2:].partition("#")[0]
    end = len(rest)
    for delimiter in "/?":
        found = rest.find(delimiter)
        if 0 <= found < end:
            end = found
    authority, rest = rest[:end], rest[end:]
    path, _, query = rest.partition("?")
    host, port = _authority(authority, scheme)
    normal = f"{scheme}://{host}{port}{_path(path)}{_query(query)}"
    if len(normal) > MAX_URL_BYTES:
        raise _fail(
            "too-long", f"the normal URL is {len(normal)} bytes, the limit is {MAX_URL_BYTES}"
        )
    return normal


def page_site(normal_url: str) -> str:
    """The host of a URL in normal form: a page thread's ``site`` (SPEC §10.2)."""
    after = normal_url.partition("://")[2]
    end = len(after)
    for delimiter in ":/?":
        found = after.find(delimiter)
        if 0 <= found < end:
            end = found
    return after[:end]


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _authority(authority: str, scheme: str) -> tuple[str, str]:
    """The normal host and ``:port`` suffix (empty for the default port)."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        raise _fail("bad-host", "IP literals in brackets can't name a page; use a host name")
    host, colon, port_text = hostport.rpartition(":")
    if not colon:
        host, port_text = hostport, ""
    port = ""
    if port_text:
        if not _DIGITS.fullmatch(port_text) or int(port_text) > 65535:
            raise _fail("bad-port", f"{port_text!r} is not a port number")
        if int(port_text) != _DEFAULT_PORTS[scheme]:
            port = f":{int(port_text)}"
    return _host(host), port


def _host(host: str) -> str:
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise _fail("no-host", "the URL names no host")
    if "%" in host:
        raise _fail("bad-host", f"the host {_shown(host)} holds a percent escape")
    if host.isascii():
        labels = host.lower().split(".")
    else:
        try:
            mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
            labels = [
                label if label.isascii() else idna.alabel(label).decode("ascii")
                for label in mapped.split(".")
            ]
        except (idna.IDNAError, UnicodeError, ValueError) as error:
            raise _fail(
                "bad-host", f"the host {_shown(host)} is not a valid name: {error}"
            ) from None
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise _fail("bad-host", f"the host {_shown(host)} is not a valid name")
    if _DIGITS.fullmatch(labels[-1]) and not _is_dotted_quad(labels):
        raise _fail("bad-host", f"the host {_shown(host)} is not an IPv4 address in dotted form")
    normal = ".".join(labels)
    if len(normal) > MAX_HOST_CHARS:
        raise _fail("too-long", f"the host is {len(normal)} characters, the limit is 253")
    return normal


def _is_dotted_quad(labels: list[str]) -> bool:
    return len(labels) == 4 and all(
        _DIGITS.fullmatch(label) and str(int(label)) == label and int(label) <= 255
        for label in labels
    )


def _percent_normal(text: str, safe: frozenset[str]) -> str:
    """Rule 5 for one component."""
    if text.isascii() and "%" not in text and all(c in safe for c in text):
        return text
    out: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "%":
            escape = text[index + 1 : index + 3]
            if len(escape) == 2 and escape[0] in _HEX and escape[1] in _HEX:
                decoded = chr(int(escape, 16))
                out.append(decoded if decoded in _UNRESERVED else "%" + escape.upper())
                index += 3
                continue
            out.append("%25")
        elif char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
        index += 1
    return "".join(out)


def _path(path: str) -> str:
    normal = _remove_dot_segments(_percent_normal(path, _PATH_SAFE)).rstrip("/")
    return normal or "/"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on a path that is empty or starts with ``/`` (an authority's path)."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")[1:]  # the path starts with "/" (or is empty: nothing to do)
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output) if segments else path


def _query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for parameter in _percent_normal(query, _QUERY_SAFE).split("&"):
        if not parameter:
            continue
        name = parameter.partition("=")[0].lower()
        if name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(parameter)
    return "?" + "&".join(kept) if kept else ""
