"""The passage store: texts, ids, offsets and metadata, addressed by integer row.

Rows are global, append-only integers shared with the BM25 and vector indexes. Data
lives in immutable segments, one per `add`:

- `seg-NNNNNN.jsonl`: one JSON object per passage (its full record);
- `seg-NNNNNN.offsets.npy`: byte offset of each line (plus the end), so one passage
  is read without parsing the others;
- `seg-NNNNNN.keys.json`: ids, parent ids and metadata, loaded at open for id lookups
  and filters.

Deletes are tombstones (`deleted.npy`). `docstore.json` lists the segments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._ondisk import damage_as, load_json, load_npy
from shortlist.errors import IndexDamagedError, InvalidInputError
from shortlist.store.generations import link_or_copy
from shortlist.types import Passage

FilterSpec = Mapping[str, Any]
"""Metadata filter: `{field: value}` (equality) or `{field: [v1, v2]}` (membership).

All conditions must hold."""


@dataclass
class _Segment:
    name: str
    start_row: int
    ids: list[str]
    doc_ids: list[str]
    metadata: list[dict[str, Any]]
    offsets: np.ndarray | None = None
    source: Path | None = None  # directory holding this segment's files, once written
    pending: list[Passage] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ids)


def _passage_record(p: Passage) -> dict[str, Any]:
    return {
        "id": p.id,
        "doc_id": p.doc_id,
        "text": p.text,
        "title": p.title,
        "start": p.start,
        "end": p.end,
        "metadata": dict(p.metadata),
    }


def _passage_from_record(rec: Mapping[str, Any]) -> Passage:
    return Passage(
        id=rec["id"],
        doc_id=rec["doc_id"],
        text=rec["text"],
        start=rec["start"],
        end=rec["end"],
        title=rec["title"],
        metadata=rec["metadata"],
    )


def _filter_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class DocStore:
    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self._deleted = np.zeros(0, dtype=bool)
        self._row_of_id: dict[str, int] = {}
        self._rows_of_doc: dict[str, list[int]] = {}
        self._filter_cache: dict[tuple[str, str], np.ndarray] | None = None

    # ---- size and lookup -------------------------------------------------
    @property
    def next_row(self) -> int:
        return len(self._deleted)

    @property
    def num_passages(self) -> int:
        return int((~self._deleted).sum())

    @property
    def num_documents(self) -> int:
        return sum(1 for rows in self._rows_of_doc.values() if rows)

    def live_mask(self) -> np.ndarray:
        return ~self._deleted

    def has_document(self, doc_id: str) -> bool:
        return bool(self._rows_of_doc.get(doc_id))

    def rows_for(self, ids: Iterable[str]) -> tuple[list[int], list[str]]:
        """Live rows for document ids or passage ids; also the ids that matched nothing."""
        rows: list[int] = []
        unknown: list[str] = []
        for i in ids:
            found = list(self._rows_of_doc.get(i, ()))
            if not found and i in self._row_of_id:
                found = [self._row_of_id[i]]
            found = [r for r in found if not self._deleted[r]]
            if found:
                rows.extend(found)
            else:
                unknown.append(i)
        return sorted(set(rows)), unknown

    def document_metadata(self) -> dict[str, dict[str, Any]]:
        """Document id -> the metadata of its first live passage, for every live document."""
        out: dict[str, dict[str, Any]] = {}
        for doc_id, rows in self._rows_of_doc.items():
            live = [r for r in rows if not self._deleted[r]]
            if live:
                seg = self._segment_of(live[0])
                out[doc_id] = seg.metadata[live[0] - seg.start_row]
        return out

    def row_of_passage(self, passage_id: str) -> int | None:
        r = self._row_of_id.get(passage_id)
        return None if r is None or self._deleted[r] else r

    # ---- mutation --------------------------------------------------------
    def add(self, passages: Sequence[Passage]) -> np.ndarray:
        """Append passages; returns their new rows. Passage ids must be new."""
        start = self.next_row
        for p in passages:
            if p.id in self._row_of_id and not self._deleted[self._row_of_id[p.id]]:
                raise InvalidInputError(f"passage id {p.id!r} is already in the index")
        seg = _Segment(
            name=f"seg-{len(self._segments) + 1:06d}-{start:010d}",
            start_row=start,
            ids=[p.id for p in passages],
            doc_ids=[p.doc_id for p in passages],
            metadata=[dict(p.metadata) for p in passages],
            pending=list(passages),
        )
        self._segments.append(seg)
        self._deleted = np.concatenate([self._deleted, np.zeros(len(passages), dtype=bool)])
        self._index_segment(seg)
        self._filter_cache = None
        return np.arange(start, start + len(passages), dtype=np.int64)

    def delete_rows(self, rows: Sequence[int] | np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self._deleted[rows] = True
        for r in rows.tolist():
            seg = self._segment_of(r)
            doc_rows = self._rows_of_doc.get(seg.doc_ids[r - seg.start_row])
            if doc_rows and r in doc_rows:
                doc_rows.remove(r)

    def _index_segment(self, seg: _Segment) -> None:
        for j, (pid, did) in enumerate(zip(seg.ids, seg.doc_ids, strict=True)):
            row = seg.start_row + j
            if self._deleted[row]:
                continue
            self._row_of_id[pid] = row
            self._rows_of_doc.setdefault(did, []).append(row)

    def _segment_of(self, row: int) -> _Segment:
        return self._segments[self._segment_index(row)]

    def _segment_index(self, row: int) -> int:
        lo, hi = 0, len(self._segments) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._segments[mid].start_row <= row:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ---- reading ---------------------------------------------------------
    def get(self, rows: Sequence[int] | np.ndarray) -> list[Passage]:
        """Passages for `rows`, in the given order; each segment file is opened once."""
        wanted = np.asarray(rows, dtype=np.int64).tolist()
        out: list[Passage | None] = [None] * len(wanted)
        by_segment: dict[int, list[int]] = {}
        for pos, r in enumerate(wanted):
            by_segment.setdefault(self._segment_index(r), []).append(pos)
        for s, positions in by_segment.items():
            seg = self._segments[s]
            if seg.pending:
                for pos in positions:
                    out[pos] = seg.pending[wanted[pos] - seg.start_row]
                continue
            assert seg.offsets is not None and seg.source is not None
            path = seg.source / f"{seg.name}.jsonl"
            with damage_as(path), open(path, "rb") as fh:
                for pos in positions:
                    j = wanted[pos] - seg.start_row
                    a, b = int(seg.offsets[j]), int(seg.offsets[j + 1])
                    fh.seek(a)
                    out[pos] = _passage_from_record(json.loads(fh.read(b - a)))
        return [p for p in out if p is not None]

    def filter_mask(self, filter: FilterSpec) -> np.ndarray:
        """Rows (live) whose metadata matches every `field: value | [values]` condition."""
        if not filter:
            return self.live_mask()
        if self._filter_cache is None:
            self._filter_cache = {}
            postings: dict[tuple[str, str], list[int]] = {}
            for seg in self._segments:
                for j, md in enumerate(seg.metadata):
                    for key, value in md.items():
                        values = value if isinstance(value, list) else [value]
                        for v in values:
                            postings.setdefault((key, _filter_key(v)), []).append(seg.start_row + j)
            self._filter_cache = {k: np.asarray(v, dtype=np.int64) for k, v in postings.items()}
        mask = self.live_mask().copy()
        for key, wanted in filter.items():
            options = wanted if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
            field_mask = np.zeros_like(mask)
            for v in options:
                rows = self._filter_cache.get((key, _filter_key(v)))
                if rows is None and isinstance(v, str):
                    # CLI filters arrive as strings; match numbers/bools written as JSON too.
                    try:
                        rows = self._filter_cache.get((key, _filter_key(json.loads(v))))
                    except ValueError:
                        rows = None
                if rows is not None:
                    field_mask[rows] = True
            mask &= field_mask
        return mask

    # ---- persistence -----------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for seg in self._segments:
            files = [f"{seg.name}.jsonl", f"{seg.name}.offsets.npy", f"{seg.name}.keys.json"]
            if seg.pending:
                offsets = [0]
                with open(directory / files[0], "wb") as fh:
                    for p in seg.pending:
                        line = json.dumps(_passage_record(p), ensure_ascii=False).encode() + b"\n"
                        fh.write(line)
                        offsets.append(offsets[-1] + len(line))
                np.save(directory / files[1], np.asarray(offsets, dtype=np.int64))
                keys = {"ids": seg.ids, "doc_ids": seg.doc_ids, "metadata": seg.metadata}
                (directory / files[2]).write_text(json.dumps(keys, ensure_ascii=False))
                seg.offsets = np.asarray(offsets, dtype=np.int64)
                seg.pending = []
            else:
                assert seg.source is not None
                for f in files:
                    link_or_copy(seg.source / f, directory / f)
            seg.source = directory
        np.save(directory / "deleted.npy", self._deleted)
        manifest = {
            "segments": [
                {"name": s.name, "start_row": s.start_row, "count": s.count} for s in self._segments
            ],
            "next_row": self.next_row,
        }
        (directory / "docstore.json").write_text(json.dumps(manifest))

    @classmethod
    def load(cls, directory: Path) -> DocStore:
        """Open a store written by `save`.

        Raises `IndexDamagedError` naming the file when one is missing, truncated or
        inconsistent with the others (passage texts are checked by size only; they are
        read lazily by `get`).
        """
        store = cls()
        manifest_path = directory / "docstore.json"
        manifest = load_json(manifest_path)
        with damage_as(manifest_path):
            segments = [
                (str(s["name"]), int(s["start_row"]), int(s["count"])) for s in manifest["segments"]
            ]
            next_row = int(manifest["next_row"])
        deleted_path = directory / "deleted.npy"
        store._deleted = np.array(load_npy(deleted_path, ndim=1), dtype=bool)
        if len(store._deleted) != next_row:
            raise IndexDamagedError(
                deleted_path, f"covers {len(store._deleted)} rows, the store has {next_row}"
            )
        for name, start_row, count in segments:
            keys_path = directory / f"{name}.keys.json"
            offsets_path = directory / f"{name}.offsets.npy"
            texts_path = directory / f"{name}.jsonl"
            keys = load_json(keys_path)
            with damage_as(keys_path):
                ids, doc_ids, metadata = keys["ids"], keys["doc_ids"], keys["metadata"]
                if not len(ids) == len(doc_ids) == len(metadata) == count:
                    raise ValueError(f"lists of {len(ids)} ids for a segment of {count}")
            offsets = load_npy(offsets_path, ndim=1, integer=True)
            if len(offsets) != count + 1 or offsets[0] != 0 or (np.diff(offsets) <= 0).any():
                raise IndexDamagedError(offsets_path, f"not {count + 1} increasing offsets")
            with damage_as(texts_path):
                size = texts_path.stat().st_size
            if size != int(offsets[-1]):
                raise IndexDamagedError(
                    texts_path, f"holds {size} bytes where its offsets need {int(offsets[-1])}"
                )
            seg = _Segment(
                name=name,
                start_row=start_row,
                ids=ids,
                doc_ids=doc_ids,
                metadata=metadata,
                offsets=offsets,
                source=directory,
            )
            store._segments.append(seg)
            with damage_as(keys_path):
                store._index_segment(seg)
        return store
