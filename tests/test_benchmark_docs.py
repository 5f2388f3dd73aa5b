"""The load test's results land in docs/benchmarks.md, replacing the last ones."""

from __future__ import annotations

from pathlib import Path

from benchmarks.load import SUMMARY_TITLE, splice


def test_splice_inserts_before_the_targets_then_replaces_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Speed\n\nfast\n\n## Targets\n\nall pass\n")
    splice(doc, "first run\n")
    splice(doc, "second run\n")
    text = doc.read_text()
    assert text.count(f"## {SUMMARY_TITLE}") == 1
    assert "first run" not in text
    assert text.index("## Speed") < text.index("second run") < text.index("## Targets")
    assert text.endswith("## Targets\n\nall pass\n")
