"""Memory-mapped ragged stores: variable-length records of one or more streams, decoded once.

A dataset too large to pad in memory (N-MNIST: 60,000 recordings of ~4,000 events; GRID: video
frames, MFCCs and words of 33,000 utterances) is written once, record by record, into a store
folder and read back slice by slice (the layout of nanoGPT's ``train.bin``, one flat file per
field, plus offsets):

    meta.json            format, record count, tables and their fields (dtype, trailing shape),
                         per-record fields, and free-form ``info`` (counts, sources, settings)
    <table>.offsets      int64 [N + 1]: record i is rows offsets[i]:offsets[i + 1] of the table
    <table>.<field>.bin  rows of all records concatenated, raw little-endian, [rows, *shape]
    record.<field>.bin   one value per record, [N] (labels, speakers)
    names.txt            the source of each record (a path relative to the raw data), one a line

A table is one stream with its own clock (N-MNIST: ``events``; GRID: ``video``, ``audio``,
``words``). The writer fills a temporary folder and renames it into place only in
:meth:`StoreWriter.commit`, so an interrupted run never leaves a store that looks complete, and
a store exists exactly when its ``meta.json`` does. Readers open the field files as fresh
``np.memmap`` views per gather (as nanoGPT re-opens its memmap per batch), so resident memory
stays at what a batch needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np

FORMAT = "plstm-ragged-store/1"


class StoreError(ValueError):
    """A store folder is missing, incomplete or not of this format."""


def _spec(fields: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """{field: dtype or (dtype, trailing shape)} -> {field: (np.dtype, shape)}."""
    out = {}
    for name, s in fields.items():
        dt, shape = (s, ()) if not isinstance(s, (tuple, list)) else (s[0], tuple(s[1]))
        out[name] = (np.dtype(dt).newbyteorder("<"), tuple(int(v) for v in shape))
    return out


class StoreWriter:
    """Append records to a new store at ``path``; :meth:`commit` publishes it atomically.

    ``tables``: {table: {field: dtype or (dtype, trailing shape)}}; ``records``: {field: dtype}.
    Use as a context manager: leaving the block by an exception removes the temporary folder.
    """

    def __init__(self, path: Path | str, tables: dict[str, dict], records: dict | None = None):
        self.path = Path(path)
        self.tables = {t: _spec(f) for t, f in tables.items()}
        self.records = _spec(records or {})
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        from ..stale import remove_stale

        remove_stale(self.path.parent)  # the temporary stores of killed runs
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        # the field files stay open while records arrive; _close (commit, abort) closes them
        self._open = contextlib.ExitStack()
        self._files = {}
        for t, fields in self.tables.items():
            for f in fields:
                self._files[(t, f)] = self._open.enter_context(
                    open(self.tmp / f"{t}.{f}.bin", "wb"))  # noqa: SIM115
        for f in self.records:
            self._files[("record", f)] = self._open.enter_context(
                open(self.tmp / f"record.{f}.bin", "wb"))  # noqa: SIM115
        self._names = self._open.enter_context(
            open(self.tmp / "names.txt", "w", encoding="utf-8"))  # noqa: SIM115
        self._offsets = {t: [0] for t in self.tables}
        self.n = 0

    def add(self, name: str, records: dict | None = None, **rows: dict[str, np.ndarray]) -> None:
        """One record: its source ``name``, its per-record values, and for every table a dict
        of equally long arrays (one per field, shaped [rows, *trailing shape])."""
        if "\n" in name:
            raise ValueError(f"store: a record name may not contain a newline: {name!r}")
        records = records or {}
        if set(rows) != set(self.tables) or set(records) != set(self.records):
            raise ValueError(f"store: expected tables {sorted(self.tables)} and records "
                             f"{sorted(self.records)}, got {sorted(rows)} and {sorted(records)}")
        checked, counts = {}, {}
        for t, fields in self.tables.items():
            given = rows[t]
            if set(given) != set(fields):
                raise ValueError(f"store: table {t} expects fields {sorted(fields)}, got "
                                 f"{sorted(given)}")
            n = None
            for f, (dt, shape) in fields.items():
                a = np.asarray(given[f])
                if a.shape[1:] != shape or (n is not None and len(a) != n):
                    raise ValueError(f"store: {t}.{f} of {name}: expected [rows, *{shape}] with "
                                     f"rows equal for every field, got {a.shape}")
                if a.size and np.issubdtype(dt, np.integer):
                    info = np.iinfo(dt)
                    if a.min() < info.min or a.max() > info.max:
                        raise ValueError(f"store: {t}.{f} of {name} has values outside {dt} "
                                         f"({a.min()}..{a.max()})")
                n = len(a)
                checked[(t, f)] = a.astype(dt, copy=False)
            counts[t] = n or 0
        try:
            for (t, f), a in checked.items():
                self._files[(t, f)].write(np.ascontiguousarray(a).tobytes())
            for f, (dt, _) in self.records.items():
                self._files[("record", f)].write(np.asarray(records[f], dtype=dt).tobytes())
            self._names.write(name + "\n")
        except OSError as e:  # a full disk: name the store, not just the errno
            raise OSError(e.errno, f"store: cannot write {self.path} (in {self.tmp}): "
                                   f"{e.strerror or e}") from None
        for t, n in counts.items():  # only once every table passed its checks
            self._offsets[t].append(self._offsets[t][-1] + n)
        self.n += 1

    def commit(self, info: dict | None = None) -> Path:
        """Close the files, write offsets and meta.json, and rename the folder into place
        (replacing an older store at ``path``)."""
        self._close()
        for t, offs in self._offsets.items():
            np.asarray(offs, dtype="<i8").tofile(self.tmp / f"{t}.offsets")
        meta = {"format": FORMAT, "n": self.n,
                "tables": {t: {f: [dt.str, list(s)] for f, (dt, s) in fields.items()}
                           for t, fields in self.tables.items()},
                "records": {f: dt.str for f, (dt, _) in self.records.items()},
                "info": info or {}}
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _close(self) -> None:
        self._open.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class Store:
    """Read side of a store folder: offsets, per-record values and names in memory; the rows
    memory-mapped and copied out per :meth:`gather`."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise StoreError(f"store: no complete store at {self.path} (meta.json missing)")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"store: {meta_path} is unreadable ({e})") from None
        if meta.get("format") != FORMAT:
            raise StoreError(f"store: {self.path} has format {meta.get('format')!r}, expected "
                             f"{FORMAT!r}; delete it and preprocess again")
        self.n: int = meta["n"]
        self.info: dict = meta["info"]
        self.tables = {t: {f: (np.dtype(d), tuple(s)) for f, (d, s) in fields.items()}
                       for t, fields in meta["tables"].items()}
        self.records = {f: np.fromfile(self.path / f"record.{f}.bin", dtype=np.dtype(d))
                        for f, d in meta["records"].items()}
        self.names = (self.path / "names.txt").read_text(encoding="utf-8").splitlines()
        self._offsets = {t: np.fromfile(self.path / f"{t}.offsets", dtype="<i8")
                         for t in self.tables}
        for t, o in self._offsets.items():
            if len(o) != self.n + 1:
                raise StoreError(f"store: {self.path / (t + '.offsets')} has {len(o)} entries, "
                                 f"expected {self.n + 1}")

    @staticmethod
    def exists(path: Path | str) -> bool:
        return (Path(path) / "meta.json").is_file()

    def __len__(self) -> int:
        return self.n

    def offsets(self, table: str) -> np.ndarray:
        return self._offsets[table]

    def lengths(self, table: str) -> np.ndarray:
        """Rows per record of ``table``, int64 [N]."""
        return np.diff(self._offsets[table])

    def field(self, table: str, name: str) -> np.ndarray:
        """A fresh read-only memory map of one field, [rows, *shape]."""
        dt, shape = self.tables[table][name]
        path = self.path / f"{table}.{name}.bin"
        rows = int(self._offsets[table][-1])
        if rows == 0:
            return np.zeros((0, *shape), dtype=dt)
        return np.memmap(path, dtype=dt, mode="r", shape=(rows, *shape))

    def gather(self, table: str, idx: Sequence[int],
               fields: Sequence[str] | None = None) -> dict[str, list[np.ndarray]]:
        """The rows of records ``idx`` of ``table``: {field: [array per record]}, copied out of
        fresh memory maps (nothing stays mapped after the call)."""
        offs = self._offsets[table]
        out = {}
        for f in fields or self.tables[table]:
            mm = self.field(table, f)
            out[f] = [np.array(mm[offs[i]:offs[i + 1]]) for i in idx]
            del mm
        return out
