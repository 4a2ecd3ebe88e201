"""A comment's text, as ``comment``, ``reply`` and ``edit`` take it: ``--body TEXT``, ``--body-file
FILE``, ``-`` for standard input, or the user's editor.

Rules:

1. ``--body TEXT`` is the text; ``--body -`` and ``--body-file -`` read standard input;
   ``--body-file FILE`` reads FILE, which must be UTF-8. One trailing newline run is dropped.
2. With neither, on a terminal (standard input is one), ``$VISUAL`` or ``$EDITOR`` (else ``vi``)
   opens a draft file in the data dir, as ``git commit`` does: a template of comment lines
   (starting with ``#``) says what is written and, for a reply or an edit, shows the text
   answered or edited. When the editor exits 0, comment lines are removed, trailing blanks and
   blank lines at either end dropped; an empty text aborts. Without a terminal, it is a
   `UsageError` that says how to give the text.
3. A text over `MAX_BODY_BYTES` of UTF-8 is refused here, before anything is sent, with its size
   and the limit: the shell's "Argument list too long" is never what a long comment gets.
4. The draft file is removed once the text is posted; when posting fails, the error says where
   the draft is kept and how to post it (``--body-file``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from p2pcomments.cli.arguments import UsageError, read_input_file, text_argument
from p2pcomments.errors import P2PCommentsError

__all__ = ["DRAFT_NAME", "MAX_BODY_BYTES", "Body", "clean_edited_text", "read_body"]

# `core.ops.MAX_BODY_BYTES`, repeated so that reading arguments imports no core (a test checks).
MAX_BODY_BYTES: Final = 32 * 1024
DRAFT_NAME: Final = "DRAFT_BODY.txt"
_COMMENT: Final = "#"


class Body:
    """The text to post and, when it came from the editor, its draft file (rule 4)."""

    def __init__(self, text: str, draft: Path | None = None) -> None:
        self.text = text
        self.draft = draft

    @contextmanager
    def posting(self) -> Iterator[str]:
        """``with body.posting() as text: post(text)``: removes the draft once posted, or says
        where it is kept when posting fails."""
        try:
            yield self.text
        except P2PCommentsError as error:
            if self.draft is not None:
                error.message += (
                    f" (your text is kept in {self.draft}: `--body-file {self.draft}` posts it)"
                )
            raise
        if self.draft is not None:
            self.draft.unlink(missing_ok=True)


def clean_edited_text(text: str) -> str:
    """Rule 2's clean-up of what the editor left: no comment lines, no trailing blanks, no blank
    lines at either end (git's ``--cleanup=strip``)."""
    # As git: only a line that starts with '#' is a comment; an indented one is text (code).
    lines = [line.rstrip() for line in text.splitlines() if not line.startswith(_COMMENT)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _check_size(text: str, what: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise UsageError(
            f"{what}: the text is {size:,} bytes of UTF-8; a comment holds at most"
            f" {MAX_BODY_BYTES:,} bytes",
            reason="body-too-long",
        )
    return text


def _from_file(name: str) -> str:
    data = read_input_file(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = "standard input" if name == "-" else name
        raise UsageError(
            f"{where} is not UTF-8 text: byte {data[error.start]:#04x} at offset {error.start}"
        ) from None
    return text.removeprefix("\ufeff").rstrip("\n")


def _editor_command() -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    if os.name == "posix":
        # As git runs it: through the shell, so EDITOR="code --wait" works.
        return ["/bin/sh", "-c", editor + ' "$@"', editor]
    return shlex.split(editor)


def _template(what: str, context: Sequence[str]) -> str:
    lines = [
        "",
        f"# Write {what} above. Lines starting with '#' are removed; an empty text aborts.",
        f"# At most {MAX_BODY_BYTES:,} bytes. Markdown headings need --body-file (it keeps '#').",
    ]
    lines.extend(f"# {line}".rstrip() for line in context)
    return "\n".join(lines) + "\n"


def _from_editor(data_dir: Path, what: str, initial: str, context: Sequence[str]) -> Body:
    draft = data_dir / DRAFT_NAME
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft.write_text(initial + _template(what, context), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write the draft {draft}: {error.strerror or error}") from None
    command = [*_editor_command(), str(draft)]
    try:
        finished = subprocess.run(command, check=False)  # noqa: S603 - the user's own editor
    except OSError as error:
        raise UsageError(
            f"cannot run the editor {command[-2]!r}: {error.strerror or error}"
            " (set VISUAL or EDITOR, or give --body / --body-file)"
        ) from None
    if finished.returncode != 0:
        raise UsageError(
            f"the editor exited with status {finished.returncode}: nothing was posted"
            f" (the draft is {draft})"
        )
    try:
        text = clean_edited_text(draft.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read the draft {draft}: {error}") from None
    if not text:
        draft.unlink(missing_ok=True)
        raise UsageError(f"{what}: the text is empty, so nothing was posted", reason="aborted")
    return Body(text, draft)


Prepare = Callable[[], tuple[str, Sequence[str]]]


def read_body(
    *,
    body: str | None,
    body_file: str | None,
    data_dir: Path,
    what: str,
    prepare: Prepare | None = None,
) -> Body:
    """The text of ``--body`` / ``--body-file``, else from the editor on a terminal (rules 1-3).
    ``what`` names it in messages ("a comment", "your reply"). For the editor only, ``prepare``
    gives the text to start from (an edit starts from the current one) and context lines to show
    as comments (what is answered)."""
    if body is not None:
        return Body(_check_size(text_argument(body), what))
    if body_file is not None:
        return Body(_check_size(_from_file(body_file), what))
    if not sys.stdin.isatty():
        raise UsageError(
            f"{what}: give the text with --body TEXT, --body-file FILE or --body - (standard"
            " input); on a terminal, $EDITOR opens for it"
        )
    initial, context = prepare() if prepare is not None else ("", ())
    edited = _from_editor(data_dir, what, initial, context)
    try:
        _check_size(edited.text, what)
    except UsageError as error:
        error.message += f" (the draft is {edited.draft})"
        raise
    return edited
