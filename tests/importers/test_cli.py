"""``p2pc import wordpress|disqus`` and ``p2pc export --format``, as a user runs them: the
installed entry point in subprocesses, offline and through a daemon."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from api.processes import ok, ok_json, run_p2pc, running_daemon

from tests.importers.conftest import fixture

pytestmark = pytest.mark.network


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    ok(home, "init")
    return home


def test_import_show_export_offline(tmp_path: Path) -> None:
    home = _home(tmp_path)
    export = str(fixture("isso/wordpress.xml"))
    dry = ok_json(home, "import", "wordpress", export, "--dry-run")
    assert dry["dry_run"] is True
    assert dry["new_operations"] == 14
    assert ok_json(home, "threads")["threads"] == []
    summary = ok(home, "import", "wordpress", export)
    assert "imported 8 comments, 0 pingbacks, 0 trackbacks in 3 threads" in summary
    assert "14 of 14 operations were new here" in summary
    again = ok_json(home, "import", "wordpress", export)
    assert again["new_operations"] == 0
    threads = ok_json(home, "threads")["threads"]
    hello = next(t for t in threads if t["url"] == "http://example.tld/2014/test")
    shown = ok(home, "show", hello["id"])
    assert "Ohai · imported from WordPress, 14 Jan 2014" in shown
    assert "Drölfter!" in shown
    as_json = ok_json(home, "show", hello["id"])
    first = as_json["comments"][0]
    assert first["provenance"]["label"] == "imported from WordPress, 14 Jan 2014"
    assert first["provenance"]["author_url"] == "http://example.tld/"

    wxr = tmp_path / "out.xml"
    ok(home, "export", hello["id"], "--format", "wxr", "-o", str(wxr))
    assert "<wp:wxr_version>1.2</wp:wxr_version>" in wxr.read_text(encoding="utf-8")
    assert ok_json(home, "import", "wordpress", str(wxr))["new_operations"] == 0
    everything = tmp_path / "all.xml"  # streamed, a few threads at a time
    exported = ok_json(home, "export", "--format", "wxr", "-o", str(everything))
    assert exported["threads"] == everything.read_text(encoding="utf-8").count("<item>") == 3
    assert ok_json(home, "import", "wordpress", str(everything))["new_operations"] == 0
    document = json.loads(ok(home, "export", "--format", "json"))
    assert len(document["threads"]) == 3
    # Bundles still go both ways, with and without the `bundle` word.
    bundle = tmp_path / "all.ndjson"
    ok(home, "export", "--all", "-o", str(bundle))
    other = _home(tmp_path / "other")
    assert ok_json(other, "import", str(bundle))["rejected"] == 0
    assert ok_json(other, "import", "bundle", str(bundle))["duplicate"] > 0


def test_broken_and_hostile_files_fail_cleanly(tmp_path: Path) -> None:
    home = _home(tmp_path)
    result = run_p2pc(home, "import", "disqus", str(fixture("remark42-disqus.xml")))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "not well-formed XML" in result.stderr
    assert "line 1, column 1" in result.stderr
    assert ok_json(home, "threads")["threads"] == []
    laughs = tmp_path / "laughs.xml"
    laughs.write_text(
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<rss><channel><title>&b;</title></channel></rss>",
        encoding="utf-8",
    )
    result = run_p2pc(home, "import", "wordpress", str(laughs))
    assert result.returncode == 1
    assert "entities" in result.stderr
    result = run_p2pc(home, "import", "mastodon", "x.xml")
    assert result.returncode == 1
    assert "import: p2pc import [bundle] FILE" in result.stderr


def test_import_through_a_daemon(tmp_path: Path) -> None:
    home = _home(tmp_path)
    with running_daemon(home, tmp_path / "logs") as daemon:
        export = str(fixture("isso/disqus.xml"))
        report = ok_json(home, "import", "disqus", export, "--include-deleted")
        assert report["imported"] == {"comments": 5}
        assert report["imported_by_status"] == {"deleted": 1}
        assert ok_json(home, "import", "disqus", export, "--include-deleted")["new_operations"] == 0
        request = urllib.request.Request(
            f"{daemon.url}/api/import/disqus",
            data=Path(export).read_bytes(),
            method="POST",
            headers={"Content-Type": "application/xml"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)  # no token
        assert refused.value.code == 401
        request.add_header("Authorization", daemon.auth["Authorization"])
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        # Without --include-deleted, 11 (a reply to the deleted 9) would go to the top level:
        # the comment held under the tombstone stands instead of a second copy.
        assert body["new_operations"] == 0
        assert body["skipped"] == {"already-imported": 1, "deleted": 1, "no-thread": 1, "no-url": 1}
        wxr = urllib.request.urlopen(f"{daemon.url}/api/export/wxr", timeout=30).read()
        assert b"<wp:comment>" in wxr
