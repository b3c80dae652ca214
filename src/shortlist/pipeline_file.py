"""The pipeline file (`shortlist.toml`): one pipeline, written by `shortlist tune` or by hand.

    version = 1
    k = 50                 # candidates from the first stage
    top_n = 10             # results kept
    reranker = "none"      # a reranker spec, or "none"

    [first_stage]
    mode = "hybrid"        # bm25 | dense | hybrid

    [first_stage.bm25]     # optional: the index's own k1/b when left out
    k1 = 1.2
    b = 0.75

    [first_stage.fusion]   # hybrid only; optional: the index's own fusion when left out
    method = "zscore"      # rrf | minmax | zscore | dbsf
    weights = [0.3, 0.7]   # (BM25, dense)
    rrf_k = 60
    depth = 100

A `[tuned]` table, if present, is free-form notes (what `tune` measured); it does not
change the pipeline. `PipelineConfig.load(path)` reads and validates a file (errors
name the key and the fix), `save(path)` writes one atomically, and
`Pipeline.from_config(config, index)` builds exactly that pipeline, the same way in the
library, `shortlist search --pipeline-file`, `shortlist serve --pipeline-file` and
`shortlist eval --pipeline-file`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shortlist.errors import InvalidInputError, ShortlistError
from shortlist.retrieve.fusion import FUSIONS
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import MODES, BM25Params, FirstStageSpec

FILE_VERSION = 1
"""The pipeline file format this shortlist reads and writes."""

_TOP_KEYS = ("version", "k", "top_n", "reranker", "first_stage", "tuned")
_STAGE_KEYS = ("mode", "bm25", "fusion")
_BM25_KEYS = ("k1", "b")
_FUSION_KEYS = ("method", "weights", "rrf_k", "depth", "long_query_weights")


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline as data: first stage (with its parameters), K, reranker, N.

    `bm25` None scores with the index's own k1/b; `fusion` None (hybrid only) fuses with
    the index's own settings. `notes` is free-form (`[tuned]`), kept on round trips.
    Raises `InvalidInputError` for invalid values.
    """

    mode: str = "hybrid"
    k: int = 50
    top_n: int = 10
    reranker: str | None = None
    bm25: BM25Params | None = None
    fusion: HybridConfig | None = None
    notes: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(
                f"first_stage.mode {self.mode!r} is not a first stage; use one of "
                f"{', '.join(MODES)}"
            )
        if self.k < 1:
            raise InvalidInputError(
                f"k must be >= 1 (candidates from the first stage), got {self.k}"
            )
        if self.top_n < 1:
            raise InvalidInputError(f"top_n must be >= 1 (results kept), got {self.top_n}")
        if self.fusion is not None and self.mode != "hybrid":
            raise InvalidInputError(
                f"first_stage.fusion applies to mode 'hybrid' only, not {self.mode!r}; "
                'remove the [first_stage.fusion] table or set mode = "hybrid"'
            )
        if self.bm25 is not None and self.mode == "dense":
            raise InvalidInputError(
                "first_stage.bm25 does not apply to mode 'dense'; remove the "
                '[first_stage.bm25] table or use mode "bm25" or "hybrid"'
            )
        if self.reranker is not None and self.reranker.strip() in ("", "none"):
            object.__setattr__(self, "reranker", None)

    # ---- as a spec string ------------------------------------------------------------
    def first_stage_spec(self) -> FirstStageSpec:
        """The first stage with every parameter this file sets."""
        fusion = self.fusion
        return FirstStageSpec(
            self.mode,
            bm25=self.bm25,
            method=fusion.method if fusion else None,
            weights=fusion.weights if fusion else None,
            rrf_k=fusion.rrf_k if fusion else None,
            depth=fusion.depth if fusion else None,
            long_weights=fusion.long_weights if fusion else None,
        )

    @property
    def spec(self) -> str:
        """The pipeline spec string (`FIRST_STAGE?PARAMS[+RERANKER]`) `shortlist eval` runs."""
        first = str(self.first_stage_spec())
        return first + (f"+{self.reranker}" if self.reranker else "")

    # ---- as data ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        stage: dict[str, Any] = {"mode": self.mode}
        if self.bm25 is not None:
            stage["bm25"] = {"k1": self.bm25.k1, "b": self.bm25.b}
        if self.fusion is not None:
            fusion = self.fusion.to_dict()
            # The word counts are the index's (HybridConfig's defaults); not a file setting.
            fusion.pop("long_query_words", None)
            stage["fusion"] = fusion
        out: dict[str, Any] = {
            "version": FILE_VERSION,
            "k": self.k,
            "top_n": self.top_n,
            "reranker": self.reranker or "none",
            "first_stage": stage,
        }
        if self.notes:
            out["tuned"] = dict(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "pipeline file") -> PipelineConfig:
        """Validate a parsed file. Raises `InvalidInputError` naming the key and the fix."""

        def bad(key: str, problem: str) -> InvalidInputError:
            return InvalidInputError(f"{source}: {key} {problem}")

        _only(data, _TOP_KEYS, "", bad)
        if "version" not in data:
            raise bad("version", f"is missing; add `version = {FILE_VERSION}` at the top")
        version = data["version"]
        if not _is_int(version) or version < 1:
            raise bad("version", f"must be a positive integer, got {version!r}")
        if version > FILE_VERSION:
            raise bad(
                "version",
                f"is {version}, but this shortlist reads version {FILE_VERSION}; "
                "upgrade shortlist or write the file again with this one",
            )
        stage = data.get("first_stage")
        if not isinstance(stage, Mapping):
            raise bad("first_stage", 'is missing; add a [first_stage] table with mode = "hybrid"')
        _only(stage, _STAGE_KEYS, "first_stage.", bad)
        mode = stage.get("mode")
        if mode not in MODES:
            raise bad("first_stage.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
        k = _int_at(data, "k", 50, bad, "candidates from the first stage, e.g. k = 50")
        top_n = _int_at(data, "top_n", 10, bad, "results kept, e.g. top_n = 10")
        reranker = data.get("reranker", "none")
        if not isinstance(reranker, str) or not reranker.strip():
            raise bad("reranker", f'must be a reranker spec string or "none", got {reranker!r}')
        bm25 = None
        if "bm25" in stage:
            table = _table(stage["bm25"], "first_stage.bm25", bad)
            _only(table, _BM25_KEYS, "first_stage.bm25.", bad)
            if set(table) != set(_BM25_KEYS):
                raise bad("first_stage.bm25", "needs both k1 and b, e.g. k1 = 1.2 and b = 0.75")
            k1, b = (_float_at(table, key, "first_stage.bm25.", bad) for key in _BM25_KEYS)
            try:
                bm25 = BM25Params(k1, b)
            except InvalidInputError as exc:
                raise bad("first_stage.bm25", str(exc)) from None
        fusion = None
        if "fusion" in stage:
            table = _table(stage["fusion"], "first_stage.fusion", bad)
            _only(table, _FUSION_KEYS, "first_stage.fusion.", bad)
            method = table.get("method", "rrf")
            if method not in FUSIONS:
                raise bad(
                    "first_stage.fusion.method",
                    f"must be one of {', '.join(sorted(FUSIONS))}, got {method!r}",
                )
            weights = table.get("weights", [0.5, 0.5])
            if (
                not isinstance(weights, list)
                or len(weights) != 2
                or not all(_is_number(w) for w in weights)
            ):
                raise bad(
                    "first_stage.fusion.weights",
                    f"must be two numbers [bm25, dense], e.g. [0.3, 0.7]; got {weights!r}",
                )
            rrf_k = _int_at(
                table, "rrf_k", 60, bad, "RRF's constant, e.g. rrf_k = 60", "first_stage.fusion."
            )
            depth = _int_at(
                table,
                "depth",
                100,
                bad,
                "candidates per side, e.g. depth = 100",
                "first_stage.fusion.",
            )
            long = table.get("long_query_weights")
            if long is not None and (
                not isinstance(long, list) or len(long) != 2 or not all(_is_number(w) for w in long)
            ):
                raise bad(
                    "first_stage.fusion.long_query_weights",
                    "must be two numbers [bm25, dense] for long queries, e.g. [0.9, 0.1], or "
                    f"left out for fixed weights; got {long!r}",
                )
            try:
                fusion = HybridConfig(
                    str(method),
                    depth,
                    rrf_k,
                    (float(weights[0]), float(weights[1])),
                    (float(long[0]), float(long[1])) if long is not None else None,
                )
            except InvalidInputError as exc:
                raise bad("first_stage.fusion", str(exc)) from None
        notes = data.get("tuned", {})
        if not isinstance(notes, Mapping):
            raise bad("tuned", "must be a table of notes ([tuned])")
        try:
            return cls(str(mode), k, top_n, reranker, bm25, fusion, dict(notes))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: {exc}") from None

    # ---- files -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Read a pipeline file. Raises `InvalidInputError` for a missing, unreadable or
        invalid file (the message names the key and the fix)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInputError(
                f"no pipeline file at {path}; write one with `shortlist tune` or by hand "
                "(see the README, 'Pipeline file')"
            ) from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read pipeline file {path}: {exc}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInputError(f"{path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path, *, header: str = "") -> None:
        """Write the file atomically (a temporary file in the same folder, renamed into
        place), with `header` as leading `#` comment lines."""
        path = Path(path)
        comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
        text = comments + dumps_toml(self.to_dict())
        directory = path.parent if str(path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise InvalidInputError(f"cannot write pipeline file {path}: {exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ---- a minimal TOML writer for this file's shapes -------------------------------------
class TomlWriteError(ShortlistError, ValueError):
    """A value the pipeline file cannot hold (not a string, number, boolean or list)."""


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML text for nested mappings of strings, booleans, ints, finite floats and lists
    of those; `tomllib.loads` reads back exactly `data`. Plain keys first, then one
    `[table]` per nested mapping (depth first). Raises `TomlWriteError` otherwise."""
    lines: list[str] = []
    _write_table(data, (), lines)
    return "\n".join(lines).strip("\n") + "\n"


def _write_table(data: Mapping[str, Any], prefix: tuple[str, ...], lines: list[str]) -> None:
    plain = [(k, v) for k, v in data.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, Mapping)]
    if prefix and (plain or not tables):
        lines.extend(["", f"[{'.'.join(_key(p) for p in prefix)}]"])
    for key, value in plain:
        lines.append(f"{_key(key)} = {_value(value, '.'.join((*prefix, key)))}")
    for key, value in tables:
        _write_table(value, (*prefix, key), lines)


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise TomlWriteError(f"TOML keys must be strings, got {key!r}")
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _string(key)


def _string(text: str) -> str:
    # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TomlWriteError(f"{where}: {value} cannot be written (finite numbers only)")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise TomlWriteError(f"{where}: cannot write {type(value).__name__} {value!r} to TOML")


# ---- validation helpers -------------------------------------------------------------------
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)


def _only(table: Mapping[str, Any], keys: tuple[str, ...], prefix: str, bad: Any) -> None:
    for key in table:
        if key not in keys:
            raise bad(f"{prefix}{key}", f"is not a known key; valid here: {', '.join(keys)}")


def _table(value: Any, key: str, bad: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise bad(key, f"must be a table ([{key}])")
    return value


def _int_at(
    table: Mapping[str, Any], key: str, default: int, bad: Any, hint: str, prefix: str = ""
) -> int:
    value = table.get(key, default)
    if not _is_int(value):
        raise bad(f"{prefix}{key}", f"must be an integer ({hint}); got {value!r}")
    return int(value)


def _float_at(table: Mapping[str, Any], key: str, prefix: str, bad: Any) -> float:
    value = table[key]
    if not _is_number(value):
        raise bad(f"{prefix}{key}", f"must be a number, got {value!r}")
    return float(value)
