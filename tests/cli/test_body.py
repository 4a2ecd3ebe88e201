"""cli.body in process: what is left of the editor's text, and the size limit's constant."""

from __future__ import annotations

from p2pcomments.cli.body import MAX_BODY_BYTES, clean_edited_text
from p2pcomments.core import ops


def test_the_limit_is_the_protocol_s() -> None:
    assert MAX_BODY_BYTES == ops.MAX_BODY_BYTES


def test_comment_lines_trailing_blanks_and_blank_ends_go() -> None:
    text = "\n\n# a note\nFirst  \n\n    # code, indented: kept\n\n# Write a comment above.\n\n"
    assert clean_edited_text(text) == "First\n\n    # code, indented: kept"
    assert clean_edited_text("# only\n#comments\n\n") == ""
