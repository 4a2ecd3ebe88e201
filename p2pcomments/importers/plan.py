"""From an export's records to signed operations: deterministic, so importing is idempotent.

Rules:

1. Each post is the page thread of (the importer's key, the post's normal URL) (SPEC §10.2),
   and the owner's retitle to the post's title (empty or not), dated the post's date.
2. Each imported comment is a comment operation by the importer's key with provenance (SPEC §2):
   source, original id, original author name and URL, original date, entry kind. Its timestamp
   is the original date; its ref is its parent (the thread, or the imported parent comment); it
   has no deps. So its bytes follow from the export's record alone (Ed25519 signatures are
   deterministic): importing a file twice makes the same operations, which the node already
   holds, and an updated export adds only the comments that are new in it.
3. Left out by default, and counted by reason: unapproved, spam and deleted comments (each has an
   option to include it), comments whose body is empty once converted (``empty``) or too long
   for one operation (``too-long``). A deleted comment that is included is imported and then
   retracted by the importer, so it stays as a tombstone that holds its replies.
4. A comment whose parent is not imported (left out, or not in the export) is attached to the
   thread's top level and counted as an orphan. A reply that comes before its parent in the file
   waits for it (memory holds only the replies waiting).
5. A closed post is closed by the importer after its comments: one close whose causal past holds
   every comment imported into the thread. A close has at most 16 deps, so a thread with more
   than 16 leaf comments is closed in steps: close, reopen (deps: the close and up to 15 more
   leaves), close..., each seeing the last, the final close seeing everything (SPEC §6 rule 8:
   every earlier close has a reopen that saw it and each leaf). Closes are dated after the last
   comment.
6. A comment the thread already holds under the same source and original id, but as another
   operation (edited at the source since, moved to the top level because its parent was deleted
   there, imported before with other options), is not imported again: the held one stands (its
   replies attach to it) and it is counted as ``already-imported``. ``known`` tells the plan
   what a thread holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    MAX_BODY_BYTES,
    MAX_DEPS,
    CommentPayload,
    EntryKind,
    ModAction,
    ModeratePayload,
    Operation,
    Provenance,
    RetractPayload,
    make_operation,
)
from p2pcomments.errors import InvalidOperation
from p2pcomments.importers.page_threads import page_thread_for, title_operation
from p2pcomments.importers.records import (
    CommentStatus,
    ImportedComment,
    ImportedPost,
    ParsedExport,
)

__all__ = ["SOURCE_NAMES", "ImportOptions", "ImportPlan", "ImportTally"]

SOURCE_NAMES: Final = {"wordpress": "WordPress", "disqus": "Disqus"}
_KIND_NAMES: Final = {
    EntryKind.COMMENT: "comments",
    EntryKind.PINGBACK: "pingbacks",
    EntryKind.TRACKBACK: "trackbacks",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    include_unapproved: bool = False
    include_spam: bool = False
    include_deleted: bool = False

    def includes(self, status: CommentStatus) -> bool:
        if status is CommentStatus.UNAPPROVED:
            return self.include_unapproved
        if status is CommentStatus.SPAM:
            return self.include_spam
        if status is CommentStatus.DELETED:
            return self.include_deleted
        return True


@dataclass(slots=True, kw_only=True)
class ImportTally:
    """What a plan made of an export, by what and why."""

    threads: int = 0
    closed_threads: int = 0
    imported: dict[str, int] = field(default_factory=dict)  # comments, pingbacks, trackbacks
    imported_by_status: dict[str, int] = field(default_factory=dict)  # unapproved, spam, deleted
    skipped: dict[str, int] = field(default_factory=dict)  # reason → count
    orphans: int = 0  # imported at the top level because their parent is not imported

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


@dataclass(slots=True)
class _Thread:
    op: Operation
    post: ImportedPost
    built: dict[str, bytes] = field(default_factory=dict)  # original id → comment op id
    left_out: set[str] = field(default_factory=set)  # original ids not imported
    waiting: dict[str, list[ImportedComment]] = field(default_factory=dict)  # by parent id
    leaves: set[bytes] = field(default_factory=set)  # comment ids no imported reply answers
    latest_ms: int = 0
    held: dict[str, bytes] = field(default_factory=dict)  # rule 6: original id → held comment
    finished: bool = False


class ImportPlan:
    """Turns a `ParsedExport` into operations (`operations`), counting into ``tally``."""

    def __init__(
        self,
        export: ParsedExport,
        signing_key: SigningKey,
        options: ImportOptions,
        known: Callable[[bytes, str], dict[str, bytes]] | None = None,
    ) -> None:
        self.export = export
        self._known = known
        self.options = options
        self.tally = ImportTally()
        self._key = signing_key
        self._owner = bytes(signing_key.verify_key)
        self._threads: dict[str, _Thread] = {}

    def operations(self) -> Iterator[Operation]:
        """Every operation of the import, each after the operations it references."""
        current: _Thread | None = None
        for entry in self.export.entries:
            if isinstance(entry, ImportedPost):
                if self.export.grouped and current is not None:  # its comments are all read
                    yield from self._finish(current)
                yield from self._post(entry)
                current = self._threads[entry.original_id]
            else:
                thread = self._threads.get(entry.post_id)
                if thread is not None:
                    yield from self._comment(thread, entry)
        for thread in self._threads.values():
            yield from self._finish(thread)
        for reason, count in self.export.skipped.items():
            self.tally.skipped[reason] = self.tally.skipped.get(reason, 0) + count

    # -- posts -------------------------------------------------------------------------------------

    def _post(self, post: ImportedPost) -> Iterator[Operation]:
        if post.original_id in self._threads:  # the same post twice: its comments join the first
            self._threads[post.original_id].finished = False
            return
        thread_op = page_thread_for(self._owner, post.url)
        held = self._known(thread_op.id, self.export.source) if self._known else {}
        thread = _Thread(op=thread_op, post=post, latest_ms=post.timestamp_ms, held=held)
        self._threads[post.original_id] = thread
        self.tally.threads += 1
        yield thread_op
        # Even an empty title is set: the operation keeps the post's date (an export writes it).
        yield title_operation(self._key, thread_op, post.title, timestamp_ms=post.timestamp_ms)

    def _finish(self, thread: _Thread) -> Iterator[Operation]:
        if thread.finished:
            return
        thread.finished = True
        # Rule 4: replies whose parent never came go to the top level, then their own replies.
        while thread.waiting:
            parent_id = next(iter(thread.waiting))
            for orphan in thread.waiting.pop(parent_id):
                yield from self._build(thread, orphan, orphan_parent=True)
        if thread.post.closed:
            self.tally.closed_threads += 1
            yield from self._close(thread)
        # What the thread needed while its comments came in: let go (a grouped export's memory
        # is one post's worth).
        thread.built, thread.left_out, thread.leaves, thread.held = {}, set(), set(), {}

    def _close(self, thread: _Thread) -> Iterator[Operation]:
        reason = f"closed in {SOURCE_NAMES.get(self.export.source, self.export.source)}"
        leaves = sorted(thread.leaves)
        timestamp = thread.latest_ms + 1
        close = self._moderate(thread, ModAction.CLOSE, reason, tuple(leaves[:MAX_DEPS]), timestamp)
        yield close
        rest = leaves[MAX_DEPS:]
        while rest:
            group, rest = rest[: MAX_DEPS - 1], rest[MAX_DEPS - 1 :]
            timestamp += 1
            reopen = self._moderate(thread, ModAction.REOPEN, reason, (close.id, *group), timestamp)
            yield reopen
            timestamp += 1
            close = self._moderate(thread, ModAction.CLOSE, reason, (reopen.id,), timestamp)
            yield close

    def _moderate(
        self, thread: _Thread, action: ModAction, reason: str, deps: tuple[bytes, ...], at: int
    ) -> Operation:
        return make_operation(
            self._key,
            ModeratePayload(action=action, reason=reason),
            timestamp_ms=at,
            thread=thread.op.id,
            refs=(thread.op.id,),
            deps=deps,
        )

    # -- comments ----------------------------------------------------------------------------------

    def _comment(self, thread: _Thread, comment: ImportedComment) -> Iterator[Operation]:
        reason = self._left_out_because(comment)
        if reason is not None:
            self.tally.count(self.tally.skipped, reason)
            thread.left_out.add(comment.original_id)
            yield from self._release(thread, comment.original_id, orphans=True)
            return
        parent = comment.parent_id
        if parent is not None and parent not in thread.built:
            if parent in thread.left_out:
                yield from self._build(thread, comment, orphan_parent=True)
            else:
                thread.waiting.setdefault(parent, []).append(comment)
            return
        yield from self._build(thread, comment, orphan_parent=False)

    def _left_out_because(self, comment: ImportedComment) -> str | None:
        if not self.options.includes(comment.status):
            return comment.status.value
        if comment.status is not CommentStatus.DELETED:
            if not comment.body.strip():
                return "empty"
            if len(comment.body.encode("utf-8")) > MAX_BODY_BYTES:
                return "too-long"
        return None

    def _build(
        self, thread: _Thread, comment: ImportedComment, *, orphan_parent: bool
    ) -> Iterator[Operation]:
        if comment.original_id in thread.built:  # the same id twice in one post: the first counts
            self.tally.count(self.tally.skipped, "duplicate-id")
            return
        parent_op = thread.op.id
        if comment.parent_id is not None:
            if orphan_parent:
                self.tally.orphans += 1
            else:
                parent_op = thread.built[comment.parent_id]
        deleted = comment.status is CommentStatus.DELETED
        body = comment.body if comment.body.strip() and not deleted else "[deleted]"
        provenance = Provenance(
            source=self.export.source,
            original_id=comment.original_id,
            author_name=comment.author_name,
            author_url=_author_url(comment.author_url),
            original_timestamp_ms=comment.timestamp_ms,
            entry_kind=comment.entry_kind,
        )
        try:
            op = make_operation(
                self._key,
                CommentPayload(body=body, provenance=provenance),
                timestamp_ms=comment.timestamp_ms,
                thread=thread.op.id,
                refs=(parent_op,),
            )
        except InvalidOperation as error:  # too large once signed, or a text the wire refuses
            self.tally.count(self.tally.skipped, error.reason)
            thread.left_out.add(comment.original_id)
            yield from self._release(thread, comment.original_id, orphans=True)
            return
        held = thread.held.get(comment.original_id)
        if held is not None and held != op.id:  # rule 6
            self.tally.count(self.tally.skipped, "already-imported")
            thread.built[comment.original_id] = held
            thread.leaves.discard(parent_op)
            thread.leaves.add(held)
            yield from self._release(thread, comment.original_id, orphans=False)
            return
        thread.built[comment.original_id] = op.id
        thread.leaves.discard(parent_op)
        thread.leaves.add(op.id)
        thread.latest_ms = max(thread.latest_ms, comment.timestamp_ms)
        self.tally.count(self.tally.imported, _KIND_NAMES[comment.entry_kind])
        if comment.status is not CommentStatus.APPROVED:
            self.tally.count(self.tally.imported_by_status, comment.status.value)
        yield op
        if deleted:
            yield make_operation(
                self._key,
                RetractPayload(),
                timestamp_ms=comment.timestamp_ms,
                thread=thread.op.id,
                refs=(op.id,),
            )
        yield from self._release(thread, comment.original_id, orphans=False)

    def _release(self, thread: _Thread, parent_id: str, *, orphans: bool) -> Iterator[Operation]:
        for reply in thread.waiting.pop(parent_id, ()):
            yield from self._build(thread, reply, orphan_parent=orphans)


def _author_url(url: str | None) -> str | None:
    """An author URL as provenance carries it: http(s), one line, within the URL limit."""
    if url is None:
        return None
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")) or len(url.encode()) > 2048:
        return None
    if any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in url):
        return None
    return url
