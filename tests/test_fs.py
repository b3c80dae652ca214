"""`shortlist._fs.replace_dir`: a folder written as a whole, or not at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shortlist._fs import replace_dir


def _write(text: str):  # type: ignore[no-untyped-def]
    def build(folder: Path) -> None:
        (folder / "data.txt").write_text(text, encoding="utf-8")

    return build


def test_replace_dir_creates_then_replaces(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    assert replace_dir(target, _write("one")) == target
    (target / "stale.txt").write_text("old", encoding="utf-8")
    replace_dir(target, _write("two"), mode=0o755)
    assert sorted(p.name for p in target.iterdir()) == ["data.txt"]
    assert (target / "data.txt").read_text(encoding="utf-8") == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert [p.name for p in target.parent.iterdir()] == ["out"]


def test_failed_build_leaves_the_old_folder_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "out"
    replace_dir(target, _write("kept"))

    def failing(folder: Path) -> None:
        (folder / "data.txt").write_text("half", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_dir(target, failing)
    assert (target / "data.txt").read_text(encoding="utf-8") == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
