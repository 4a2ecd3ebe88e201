"""The commands of claims on imported comments (SPEC §2, claims).

Rules:

1. ``p2pc claim CMT`` signs this author's claim to have written the imported comment CMT;
   ``p2pc claim accept OP`` (the thread's owner) accepts the claim OP, after which the comment
   shows as its claimant's. The owner finds claims in ``p2pc inbox``.
2. As every command, each makes its calls through `Session.call` and formats the JSON.
"""

from __future__ import annotations

from p2pcomments.cli.arguments import UsageError
from p2pcomments.cli.session import EXIT_OK, Session

__all__ = ["cmd_claim"]


def cmd_claim(session: Session) -> int:
    args = session.args
    if args.target == "accept":
        if args.claim is None:
            raise UsageError("p2pc claim accept needs the claim's id (op_…): p2pc claim accept OP")
        op = session.call("accept_claim", claim=args.claim, note=args.note)
        session.emit(op, f"accepted claim {args.claim}: {op['target']} is now {op['subject']}'s")
        return EXIT_OK
    if args.claim is not None:
        raise UsageError(f"unexpected {args.claim!r}: p2pc claim COMMENT, or p2pc claim accept OP")
    op = session.call("claim", comment=args.target, note=args.note)
    session.emit(
        op,
        f"claimed {op['target']}: {op['id']}\n"
        "It shows as yours once the thread's owner accepts (p2pc claim accept OP).",
    )
    return EXIT_OK
