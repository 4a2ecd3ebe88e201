#!/usr/bin/env python3
"""Generate the page thread vectors in protocol/vectors/ (SPEC §10) from fixed inputs.

    scripts/gen_page_vectors.py           write the files
    scripts/gen_page_vectors.py --check   regenerate in memory and compare; exit 1 on a difference

Files written (the other vector files belong to scripts/gen_vectors.py and the sync generators):

- page_urls.json     URL normalisation (SPEC §10.1): inputs, their normal form and site, and URLs
                     that can't name a page, each with its reason
- page_threads.json  page threads (SPEC §10.2): the operation, its bytes and id for (owner, URL);
                     operations carrying the zero signature that are not page threads, each with
                     its reason; retitle operations (SPEC §10.3); a page thread's history with its
                     view and digest

Every expectation is first checked against our implementation, so a vector can never disagree
with the code that generated it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

import gen_vectors as base  # noqa: E402
from vector_file import write_or_check  # noqa: E402

from p2pcomments.core.ops import (  # noqa: E402
    PAGE_THREAD_SIGNATURE,
    PROTOCOL_VERSION,
    CommentPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    decode_operation,
    page_thread,
)
from p2pcomments.core.page_url import (  # noqa: E402
    TRACKING_PARAMETERS,
    TRACKING_PREFIXES,
    normalise_page_url,
    page_site,
)
from p2pcomments.errors import InvalidOperation, PageUrlError  # noqa: E402

VECTORS = ROOT / "protocol" / "vectors"

# The seed-style URL of a French blog post: accents and an encoded "…" in its slug.
FRENCH_POST = (
    "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-%e2%80%a6/?utm_source=x#commentaires"
)
FRENCH_POST_RAW = (
    "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-…/?utm_source=x#commentaires"
)

NORMALISE: list[tuple[str, str]] = [
    ("French blog post, slug with accents and an encoded …", FRENCH_POST),
    ("the same post with a raw …", FRENCH_POST_RAW),
    (
        "the same post, escapes already uppercase",
        "https://www.exemple.fr/2024/03/l-%C3%A9t%C3%A9-o%C3%B9-tout-a-chang%C3%A9-%E2%80%A6",
    ),
    (
        "the same post, accents in NFD",
        "https://www.exemple.fr/2024/03/l-e\u0301te\u0301-ou\u0300-tout-a-change\u0301-…",
    ),
    ("already normal", "https://blog.example/2024/hello"),
    ("scheme and host case", "HTTPS://Blog.EXAMPLE/Hello"),
    ("path case is kept", "https://blog.example/Hello/World"),
    ("default port of https", "https://blog.example:443/a"),
    ("default port of http", "http://blog.example:80/a"),
    ("https on port 80 keeps it", "https://blog.example:80/a"),
    ("other port, leading zeros", "http://127.0.0.1:08000/post/"),
    ("empty port", "https://blog.example:/a"),
    ("user information dropped", "https://user:secret@blog.example/a"),
    ("fragment dropped", "https://blog.example/a#comments"),
    ("fragment holding ? and /", "https://blog.example/a#x?y=1/z"),
    ("trailing slash removed", "https://blog.example/a/b/"),
    ("several trailing slashes", "https://blog.example/a//"),
    ("empty path", "https://blog.example"),
    ("root path", "https://blog.example/"),
    ("empty path with a query", "https://blog.example?p=12"),
    ("dot segments", "https://blog.example/a/./b/../c"),
    ("dot segments above the root", "https://blog.example/../../a"),
    ("encoded dot segments", "https://blog.example/a/%2E%2e/b"),
    ("empty segments inside are kept", "https://blog.example/a//b"),
    ("unreserved escapes decoded", "https://blog.example/%7Euser/%41%62%2D%5F"),
    ("reserved escapes kept, hex uppercased", "https://blog.example/a%2fb%3fc"),
    ("a stray percent", "https://blog.example/100%/off%2"),
    ("space and other characters outside the set", 'https://blog.example/a b/"q"/<x>/{y}/|/^/`'),
    ("sub-delims, colon and at kept", "https://blog.example/a:b@c!$&'()*+,;="),
    ("backslash is encoded", "https://blog.example/a\\b"),
    (
        "tracking parameters removed, others kept in order",
        "https://blog.example/a?b=2&utm_source=feed&a=1&fbclid=XYZ&gclid=1&mc_cid=2&mc_eid=3",
    ),
    ("tracking names case-insensitive", "https://blog.example/a?UTM_Medium=x&FBCLID=y&z=1"),
    ("only tracking parameters: query dropped", "https://blog.example/a/?utm_campaign=spring"),
    ("empty parameters dropped", "https://blog.example/a?&&x=1&"),
    ("empty query dropped", "https://blog.example/a?"),
    ("query keeps + and =, encodes the rest", "https://blog.example/s?q=été+2024&tag=a/b?c"),
    ("encoded tracking name", "https://blog.example/a?utm%5Fsource=x&k=v"),
    ("a parameter that only looks like tracking", "https://blog.example/a?utm=1&xutm_a=2"),
    ("IDN host becomes its A-label", "https://Exemple-Été.FR/billet"),
    ("A-label host stays", "https://xn--exemple-t-i4ab.fr/billet"),
    ("IDN host, German sharp s (non-transitional)", "https://straße.de/"),
    ("trailing dot of the host", "https://blog.example./a"),
    ("surrounding white space", "  https://blog.example/a \n"),
    ("http and https stay distinct", "http://blog.example/a"),
    ("www stays distinct", "https://www.blog.example/a"),
    ("IPv4 address", "http://192.168.0.1/a"),
    ("localhost with a port", "http://localhost:8080/post.html"),
    ("underscore in a host label", "https://my_blog.example/a"),
    ("emoji in the path", "https://blog.example/🌹"),
]

INVALID: list[tuple[str, str, str]] = [
    ("not a URL", "blog.example/a", "not-a-url"),
    ("empty", "", "not-a-url"),
    ("scheme without //", "https:blog.example/a", "not-a-url"),
    ("ftp", "ftp://blog.example/a", "unsupported-scheme"),
    ("javascript", "javascript:alert(1)", "unsupported-scheme"),
    ("mailto", "mailto:a@blog.example", "unsupported-scheme"),
    ("no host", "https:///a", "no-host"),
    ("only user information", "https://user@/a", "no-host"),
    ("IPv6 literal", "http://[::1]/a", "bad-host"),
    ("percent in host", "https://blog%2Eexample/a", "bad-host"),
    ("space in host", "https://blog example/a", "bad-host"),
    ("empty label", "https://blog..example/a", "bad-host"),
    ("label over 63 characters", "https://" + "a" * 64 + ".example/", "bad-host"),
    ("numeric last label, not dotted-quad", "http://1.2.3/a", "bad-host"),
    ("IPv4 with a leading zero", "http://192.168.0.01/a", "bad-host"),
    ("IPv4 out of range", "http://256.1.1.1/a", "bad-host"),
    ("port not a number", "https://blog.example:http/a", "bad-port"),
    ("port out of range", "https://blog.example:65536/a", "bad-port"),
    ("control character", "https://blog.example/a\x00b", "bad-character"),
    ("tab inside", "https://blog.example/a\tb", "bad-character"),
    ("C1 control", "https://blog.example/a\x85", "bad-character"),
    ("too long once normal", "https://blog.example/" + "é" * 400, "too-long"),
    ("input over 8192 characters", "https://blog.example/" + "a" * 8192, "too-long"),
    ("host over 253 characters", "https://" + ".".join(["a" * 63] * 4) + "/", "too-long"),
]


def normalise_case(label: str, url: str) -> dict[str, Any]:
    normal = normalise_page_url(url)
    if normalise_page_url(normal) != normal:
        raise AssertionError(f"{label}: normalising is not idempotent")
    return {"label": label, "input": url, "normal": normal, "site": page_site(normal)}


def invalid_case(label: str, url: str, reason: str) -> dict[str, Any]:
    try:
        normalise_page_url(url)
    except PageUrlError as error:
        if error.reason != reason:
            raise AssertionError(f"{label}: expected {reason}, got {error.reason}") from None
    else:
        raise AssertionError(f"{label}: {url!r} normalised")
    entry: dict[str, Any] = {"label": label, "reason": reason}
    if len(url) > 600:
        entry["input_pattern"] = _pattern(url)
    else:
        entry["input"] = url
    return entry


def _pattern(url: str) -> str:
    """A long input, described: the URL with its runs of one character written as `c*n`."""
    out = []
    index = 0
    while index < len(url):
        run = 1
        while index + run < len(url) and url[index + run] == url[index]:
            run += 1
        out.append(url[index] if run < 8 else f"[{url[index]}*{run}]")
        index += run
    return "".join(out)


def page_urls() -> dict[str, Any]:
    return {
        "description": (
            "URL normalisation for page threads (SPEC §10.1). Each `normalise` input MUST "
            "normalise to `normal`, whose host is `site`; normalising `normal` again MUST give "
            "`normal`. Each `invalid` input MUST be refused with `reason`. Long inputs are given "
            "as `input_pattern`, where `[c*n]` stands for n copies of c."
        ),
        "tracking_prefixes": list(TRACKING_PREFIXES),
        "tracking_parameters": sorted(TRACKING_PARAMETERS),
        "normalise": [normalise_case(label, url) for label, url in NORMALISE],
        "invalid": [invalid_case(*case) for case in INVALID],
    }


# -- page threads ---------------------------------------------------------------------------------


PAGES: list[tuple[str, base.Signer, str]] = [
    ("the French blog post", base.OWNER, FRENCH_POST),
    ("the French blog post, raw …: the same thread", base.OWNER, FRENCH_POST_RAW),
    ("the French blog post, another owner: another thread", base.ALICE, FRENCH_POST),
    ("a local test page", base.OWNER, "http://127.0.0.1:8000/post.html"),
    ("an IDN host", base.OWNER, "https://exemple-été.fr/billet/"),
]


def page_thread_case(name: str, signer: base.Signer, url: str) -> dict[str, Any]:
    op = page_thread(signer.public, url)
    if decode_operation(op.encoded) != op:
        raise AssertionError(f"{name}: does not decode to itself")
    return {"name": name, "owner": signer.describe(), "input_url": url, **base.operation_json(op)}


def _unsigned_page(
    owner: bytes, url: str | None, site: str | None, *, title: str = "", ts: int = 0
) -> tuple[object, ...]:
    return (PROTOCOL_VERSION, int(Kind.THREAD), owner, None, (), (), ts, (title, url, site))


def zero_signed(fields: tuple[object, ...]) -> bytes:
    return base.encode((*fields, PAGE_THREAD_SIGNATURE))


def not_page_threads() -> list[tuple[str, str, bytes]]:
    """(name, description, encoding): all `bad-signature`."""
    owner = base.OWNER.public
    url = normalise_page_url(FRENCH_POST)
    site = page_site(url)
    return [
        (
            "timestamp-not-zero",
            "a page form with timestamp 1",
            zero_signed(_unsigned_page(owner, url, site, ts=1)),
        ),
        (
            "title-not-empty",
            "a page form with a title",
            zero_signed(_unsigned_page(owner, url, site, title="L'été")),
        ),
        (
            "url-not-normal",
            "the url as written in the page, not in normal form",
            zero_signed(_unsigned_page(owner, FRENCH_POST, "www.exemple.fr")),
        ),
        (
            "url-trailing-slash",
            "the url with its trailing slash",
            zero_signed(_unsigned_page(owner, url + "/", site)),
        ),
        ("site-nil", "no site", zero_signed(_unsigned_page(owner, url, None))),
        (
            "site-not-host",
            "site is not the url's host",
            zero_signed(_unsigned_page(owner, url, "exemple.fr")),
        ),
        (
            "url-not-a-page",
            "a url that can't name a page",
            zero_signed(_unsigned_page(owner, "ftp://exemple.fr/a", "exemple.fr")),
        ),
        (
            "signed-page-form",
            "the page form signed by its owner: a page thread has one byte form",
            base.sign_fields(base.OWNER, _unsigned_page(owner, url, site)),
        ),
        (
            "zero-signed-comment",
            "a comment carrying the zero signature",
            zero_signed(
                (
                    PROTOCOL_VERSION,
                    int(Kind.COMMENT),
                    owner,
                    page_thread(owner, url).id,
                    (page_thread(owner, url).id,),
                    (),
                    base.T0,
                    ("Bonjour",),
                )
            ),
        ),
    ]


def invalid_page_case(name: str, description: str, data: bytes) -> dict[str, Any]:
    try:
        decode_operation(data)
    except InvalidOperation as error:
        if error.reason != "bad-signature":
            raise AssertionError(f"{name}: expected bad-signature, got {error.reason}") from None
    else:
        raise AssertionError(f"{name}: decoded")
    return {
        "name": name,
        "reason": "bad-signature",
        "description": description,
        "encoded": data.hex(),
    }


def page_history() -> tuple[str, str, base.History]:
    h = base.History()
    t = page_thread(base.OWNER.public, FRENCH_POST)
    h.steps.append(base.Step(label="the page thread, made by anyone", signer=base.OWNER, op=t))
    h._replica.apply(t)

    def add(
        label: str,
        signer: base.Signer,
        payload: Any,
        ref: Operation,
        seen: tuple[Operation, ...],
        ts: int | None = None,
    ) -> Operation:
        return h.add(label, signer, payload, thread=t, ref=ref, seen=seen, ts=ts)

    a = add("alice comments", base.ALICE, CommentPayload(body="Très bel article !"), t, (t,))
    r1 = add(
        "the owner titles the page",
        base.OWNER,
        ModeratePayload(action=ModAction.RETITLE, reason="L'été où tout a changé…"),
        t,
        (a,),
    )
    add(
        "mallory retitles: not-moderator",
        base.MALLORY,
        ModeratePayload(action=ModAction.RETITLE, reason="Spam"),
        t,
        (r1,),
    )
    add(
        "an older retitle loses",
        base.OWNER,
        ModeratePayload(action=ModAction.RETITLE, reason="Brouillon"),
        t,
        (a,),
        ts=r1.timestamp_ms - 1,
    )
    add_bob = add(
        "owner appoints bob",
        base.OWNER,
        ModeratePayload(action=ModAction.ADD_MODERATOR, subject=base.BOB.public),
        t,
        (r1,),
    )
    b = add("bob replies", base.BOB, CommentPayload(body="Merci Alice."), a, (add_bob,))
    add(
        "bob, a moderator, retitles",
        base.BOB,
        ModeratePayload(action=ModAction.RETITLE, reason="L'été où tout a changé… (2024)"),
        t,
        (b,),
    )
    add(
        "the owner closes",
        base.OWNER,
        ModeratePayload(action=ModAction.CLOSE, reason="Les commentaires sont fermés."),
        t,
        h.heads(t),
    )
    return (
        "page-thread",
        "A page thread (SPEC §10.2) owned by `owner`: comments, retitles by the owner and a "
        "moderator (last writer wins by (timestamp_ms, id); one from a non-moderator is "
        "rejected), then a close.",
        h,
    )


def page_threads() -> dict[str, Any]:
    pages = [page_thread_case(*case) for case in PAGES]
    if pages[0]["id"] != pages[1]["id"] or pages[0]["id"] == pages[2]["id"]:
        raise AssertionError("the French post's page threads are not as described")
    history = base.history_json(*page_history())
    retitles = [
        {"label": step.label, "operation": base.operation_json(step.op)}
        for step in page_history()[2].steps
        if isinstance(step.op.payload, ModeratePayload)
        and step.op.payload.action is ModAction.RETITLE
    ]
    return {
        "description": (
            "Page threads (SPEC §10.2): `operation` is the page thread of (`owner`, `input_url`): "
            '`[1, 1, owner, nil, [], [], 0, ["", normal url, site]]` with a signature of 64 zero '
            "bytes; `id` is the SHA-256 of `unsigned_hex`. Every `not_page_threads` encoding "
            "carries the zero signature (or is the page form signed) and MUST be refused with "
            "`bad-signature`. `history` is a page thread's history with retitles (SPEC §10.3), "
            "to be read as the histories of thread_views.json."
        ),
        "signers": [s.describe() for s in base.SIGNERS],
        "page_threads": pages,
        "not_page_threads": [invalid_page_case(*case) for case in not_page_threads()],
        "retitle_operations": retitles,
        "history": history,
    }


def main() -> int:
    files = {"page_urls.json": page_urls(), "page_threads.json": page_threads()}
    texts = {
        name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for name, doc in files.items()
    }
    status = 0
    for name, text in texts.items():
        status |= write_or_check(
            VECTORS / name,
            lambda text=text: text,  # type: ignore[misc]
            description=__doc__.split("\n\n")[0],
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
