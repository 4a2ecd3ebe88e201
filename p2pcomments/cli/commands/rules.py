"""`p2pc` commands for the rules of SPEC §11: bans, approvals, modes, reply gates, proof of work,
reports, the moderation queue, recommended lists and a reader's mutes. Each calls one API action
(`api.actions` `_RULE_ACTIONS`) and prints what it did."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from p2pcomments.cli.session import EXIT_OK, Session

__all__ = [
    "add_rule_commands",
    "cmd_approve",
    "cmd_ban",
    "cmd_difficulty",
    "cmd_mode",
    "cmd_mute",
    "cmd_mutes",
    "cmd_queue",
    "cmd_recommend_list",
    "cmd_replies",
    "cmd_report",
    "cmd_reports",
    "cmd_revoke",
    "cmd_rules",
    "cmd_unban",
    "cmd_unmute",
    "mining_progress",
]


def _scope(session: Session) -> dict[str, Any]:
    args = session.args
    return {"thread": args.thread, "site": args.site}


def _where(session: Session) -> str:
    args = session.args
    return f"site {args.site}" if args.site else f"thread {args.thread}"


def _done(session: Session, op: dict[str, Any], text: str) -> int:
    session.emit(op, text)
    return EXIT_OK


def cmd_ban(session: Session) -> int:
    args = session.args
    op = session.call(
        "ban", key=args.key, reason=args.reason, until_ms=str(args.until_ms), **_scope(session)
    )
    until = f" until {args.until_ms} ms" if args.until_ms else ""
    return _done(session, op, f"banned {args.key} from {_where(session)}{until} ({op['id']})")


def cmd_unban(session: Session) -> int:
    args = session.args
    op = session.call("unban", key=args.key, reason=args.reason, **_scope(session))
    return _done(session, op, f"unbanned {args.key} in {_where(session)} ({op['id']})")


def cmd_approve(session: Session) -> int:
    args = session.args
    target = args.target.strip()
    if target.lower().startswith("cmt_"):
        op = session.call("approve_comment", comment=target, site=args.site, reason=args.reason)
        return _done(session, op, f"approved comment {target} ({op['id']})")
    if not (args.thread or args.site):
        raise _usage("approving an author needs --thread or --site")
    op = session.call("approve_author", key=target, reason=args.reason, **_scope(session))
    return _done(session, op, f"approved {target} in {_where(session)} ({op['id']})")


def cmd_revoke(session: Session) -> int:
    args = session.args
    op = session.call("revoke_author", key=args.key, reason=args.reason, **_scope(session))
    return _done(session, op, f"revoked {args.key}'s approval in {_where(session)} ({op['id']})")


def cmd_mode(session: Session) -> int:
    args = session.args
    op = session.call("set_mode", mode=args.mode, reason=args.reason, **_scope(session))
    return _done(session, op, f"{_where(session)} is now {args.mode} ({op['id']})")


def cmd_replies(session: Session) -> int:
    args = session.args
    op = session.call("set_replies", who=args.who, reason=args.reason, **_scope(session))
    return _done(session, op, f"replies in {_where(session)}: {args.who} ({op['id']})")


def cmd_difficulty(session: Session) -> int:
    args = session.args
    op = session.call("set_difficulty", bits=str(args.bits), reason=args.reason, **_scope(session))
    return _done(
        session,
        op,
        f"{_where(session)} requires {args.bits} bits of proof of work (about 2^{args.bits}"
        f" hashes per comment) of authors not approved ({op['id']})",
    )


def cmd_report(session: Session) -> int:
    args = session.args
    op = session.call("report", comment=args.comment, reason=args.reason)
    text = "withdrew your report" if not args.reason else f"reported {args.comment}"
    return _done(session, op, f"{text} ({op['id']})")


def cmd_recommend_list(session: Session) -> int:
    args = session.args
    op = session.call(
        "recommend_list",
        list=args.list,
        recommend="false" if args.withdraw else "true",
        **_scope(session),
    )
    verb = "no longer recommend" if args.withdraw else "recommend"
    return _done(session, op, f"you {verb} the mute list {args.list} ({op['id']})")


def _rule_set_lines(rule_set: dict[str, Any], label: str) -> list[str]:
    lines = [
        f"{label} {rule_set['thread']}: mode {rule_set['mode']}, replies {rule_set['replies']},"
        f" difficulty {rule_set['difficulty']}, {rule_set['report_count']} report(s)"
    ]
    for ban in rule_set["bans"]:
        until = f" until {ban['until_ms']}" if ban["until_ms"] else ""
        reason = f": {ban['reason']}" if ban["reason"] else ""
        lines.append(f"  banned {ban['key']}{until}{reason}")
    lines += [f"  approved {key}" for key in rule_set["approved_authors"]]
    lines += [f"  approved comment {c}" for c in rule_set["approved_comments"]]
    lines += [f"  recommended mute list {t}" for t in rule_set["recommended_lists"]]
    return lines


def cmd_rules(session: Session) -> int:
    result = session.call("rules", thread=session.args.thread)
    lines = _rule_set_lines(result["thread"], "thread")
    if result["site"] is not None:
        lines += _rule_set_lines(result["site"], "site")
    session.emit(result, "\n".join(lines))
    return EXIT_OK


def _comment_line(entry: dict[str, Any]) -> str:
    who = entry["author_name"] or entry["author"]
    body = entry["body"].splitlines()[0] if entry["body"] else ""
    if len(body) > 72:
        body = body[:71] + "…"
    return f"{entry['id']} by {who} in {entry['thread']}: {body}"


def cmd_queue(session: Session) -> int:
    result = session.call("moderation_queue", thread=session.args.thread)
    waiting = result["waiting"]
    lines = [f"{_comment_line(e)}  [{', '.join(e['withheld'])}]" for e in waiting]
    lines.append(
        f"{len(waiting)} comment(s) waiting; `p2pc approve CMT` releases one,"
        " `p2pc approve KEY --thread|--site` its author"
        if waiting
        else "nothing waits for a moderator"
    )
    session.emit(result, "\n".join(lines))
    return EXIT_OK


def cmd_reports(session: Session) -> int:
    result = session.call("reports", thread=session.args.thread)
    lines: list[str] = []
    for entry in result["reported"]:
        lines.append(_comment_line(entry))
        lines += [f"  reported by {r['reporter']}: {r['reason']}" for r in entry["reports"]]
    if not lines:
        lines.append("no reports")
    session.emit(result, "\n".join(lines))
    return EXIT_OK


def _mutes_text(result: dict[str, Any]) -> str:
    lines = [f"muted {k}" for k in result["keys"]]
    lines += [f"following mute list {t}" for t in result["lists"]]
    extra = len(result["muted"]) - len(result["keys"])
    if extra > 0:
        lines.append(f"{extra} more key(s) muted by the lists")
    return "\n".join(lines) if lines else "nothing muted"


def cmd_mute(session: Session) -> int:
    args = session.args
    if args.list:
        result = session.call("list_subscribe", list=args.target)
    else:
        result = session.call("mute", key=args.target)
    session.emit(result, _mutes_text(result))
    return EXIT_OK


def cmd_unmute(session: Session) -> int:
    args = session.args
    if args.list:
        result = session.call("list_unsubscribe", thread=args.target)
    else:
        result = session.call("unmute", key=args.target)
    session.emit(result, _mutes_text(result))
    return EXIT_OK


def cmd_mutes(session: Session) -> int:
    result = session.call("mutes")
    session.emit(result, _mutes_text(result))
    return EXIT_OK


def mining_progress(attempts: int, difficulty: int) -> None:
    """The progress of mining a proof of work, on stderr (`Node.mining_progress`)."""
    expected = 1 << difficulty
    share = min(99, 100 * attempts // expected) if expected else 100
    print(
        f"\rmining proof of work: {attempts:,} hashes (about {expected:,} expected for"
        f" {difficulty} bits, {share}%)",
        end="",
        file=sys.stderr,
    )
    sys.stderr.flush()


def _usage(message: str) -> Exception:
    from p2pcomments.cli.arguments import UsageError

    return UsageError(message)


def add_rule_commands(command: Any, thread_help: str, comment_help: str) -> None:
    """The subcommands of this module, added by `cli.parser.build_parser` with its ``command``."""

    def scoped(sub: argparse.ArgumentParser, *, required: bool = True) -> None:
        where = sub.add_mutually_exclusive_group(required=required)
        where.add_argument("--thread", metavar="THREAD", help=thread_help)
        where.add_argument(
            "--site",
            metavar="HOST",
            help="every page thread of your site HOST (its site thread, SPEC §11.2)",
        )
        sub.add_argument("--reason", default="", help="why, shown to readers")

    sub = command("ban", cmd_ban, "ban an author from a thread or your site (their comments"
                  " are withheld everywhere)")  # fmt: skip
    sub.add_argument("key", metavar="KEY", help="the author's key (key_…)")
    sub.add_argument(
        "--until-ms",
        type=int,
        default=0,
        metavar="MS",
        help="end of the ban: comments whose own timestamp is later are shown (default none)",
    )
    scoped(sub)
    sub = command("unban", cmd_unban, "lift a ban")
    sub.add_argument("key", metavar="KEY", help="the author's key (key_…)")
    scoped(sub)
    sub = command(
        "approve",
        cmd_approve,
        "approve an author (past pre-moderation, a member, free of proof of work) or release"
        " one comment from the queue",
    )
    sub.add_argument("target", metavar="KEY|COMMENT", help="an author (key_…) or a comment (cmt_…)")
    scoped(sub, required=False)
    sub = command("revoke", cmd_revoke, "revoke an author's approval")
    sub.add_argument("key", metavar="KEY", help="the author's key (key_…)")
    scoped(sub)
    sub = command("mode", cmd_mode, "who is shown commenting in a thread or on your site")
    sub.add_argument("mode", choices=("open", "pre-moderated", "members-only", "read-only"))
    scoped(sub)
    sub = command("replies", cmd_replies, "who may reply to a comment")
    sub.add_argument("who", choices=("everyone", "approved", "nobody-new"))
    scoped(sub)
    sub = command(
        "difficulty", cmd_difficulty, "require proof of work of authors not approved (bits)"
    )
    sub.add_argument("bits", type=int, metavar="BITS", help="leading zero bits, 0-64 (0: none)")
    scoped(sub)
    sub = command("report", cmd_report, "report a comment to its moderators")
    sub.add_argument("comment", metavar="COMMENT", help=comment_help)
    sub.add_argument("reason", metavar="REASON", help="why (empty withdraws your report)")
    sub = command("reports", cmd_reports, "reported comments in the threads you moderate")
    sub.add_argument("--thread", metavar="THREAD", help=thread_help)
    sub = command("queue", cmd_queue, "comments waiting for a moderator")
    sub.add_argument("--thread", metavar="THREAD", help=thread_help)
    sub = command("rules", cmd_rules, "the rules in force for a thread (its own and its site's)")
    sub.add_argument("thread", metavar="THREAD", help=thread_help)
    sub = command("recommend-list", cmd_recommend_list, "recommend a mute list to your readers")
    sub.add_argument("list", metavar="LIST", help="the list's thread (thr_…)")
    sub.add_argument("--withdraw", action="store_true", help="stop recommending it")
    scoped(sub)
    for name, run, help_text in (
        ("mute", cmd_mute, "mute an author for yourself (nothing on the network changes)"),
        ("unmute", cmd_unmute, "unmute an author"),
    ):
        sub = command(name, run, help_text)
        sub.add_argument("target", metavar="KEY|LIST", help="an author (key_…), or with --list a"
                         " mute list's thread (thr_…)")  # fmt: skip
        sub.add_argument(
            "--list", action="store_true", help="follow (or stop following) a mute list"
        )
    command("mutes", cmd_mutes, "your muted authors and followed mute lists")
