"""The manifest stage (as lhotse's recipes have one): every utterance of the canonical layout as
one record (its record name, speaker, sentence id and the paths of its three files), and for
each the timed words of its alignment or the reason it is broken. The features
(:mod:`.features`) and the train/test split (:mod:`.holdout`) are maps over these records."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..archives import name_problem, shown
from .corpus import ALL_SPEAKERS, EXT, KINDS, VOCABULARY, _Broken, _spk, align_words, sentence_words
from .layout import EXTRACT_LIMITS


@dataclass(frozen=True)
class Utterance:
    """One sentence of one speaker as found on disk (a missing file is None)."""

    name: str  # the store's record name, "sN/<id>"
    speaker: int
    sid: str
    video: Path | None
    audio: Path | None
    align: Path | None

    @property
    def files(self) -> tuple:
        """What :func:`.features.process_utterance` takes: (video, audio, align, sid)."""
        return (self.video, self.audio, self.align, self.sid)


def speakers_in(base: Path) -> list[int]:
    """The speaker folders (``sN``) present under ``base``, sorted."""
    out = []
    for p in base.iterdir() if base.is_dir() else ():
        m = re.fullmatch(r"s(\d{1,2})", p.name)
        if m and p.is_dir() and int(m.group(1)) in ALL_SPEAKERS:
            out.append(int(m.group(1)))
    return sorted(out)


def _files_of(folder: Path, bad: list[str] | None) -> dict[str, dict[str, Path]]:
    """{sentence id: {kind: path}} of one speaker's folder; names a store cannot hold go to
    ``bad`` ("path: why"), escaped."""
    ids: dict[str, dict[str, Path]] = {}
    for kind in KINDS.values():
        sub = folder / kind
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            if p.suffix.lower() != EXT[kind] or p.name.startswith("."):
                continue
            if why := name_problem(p.name):  # a store holds one name a line
                if bad is not None:
                    bad.append(f"{shown(str(p))}: {why}, skipped")
                continue
            ids.setdefault(p.stem, {})[kind] = p
    return ids


def inventory(base: Path, speakers: list[int], bad: list[str] | None = None) -> list[Utterance]:
    """Every sentence id of the speakers under ``base`` (canonical layout), sorted by speaker
    then id: the manifest."""
    out = []
    for s in speakers:
        ids = _files_of(base / _spk(s), bad)
        for sid in sorted(ids):
            k = ids[sid]
            out.append(Utterance(f"{_spk(s)}/{sid}", s, sid, k.get("video"), k.get("audio"),
                                 k.get("align")))
    return out


def fingerprint(utterances: list[Utterance]) -> str:
    """A hash of every input file's name, size and mtime: the stores are rebuilt when it
    changes (files added, removed or replaced)."""
    h = hashlib.sha1()
    for u in utterances:
        for p in u.files[:3]:
            if p is not None:
                st = p.stat()
                h.update(f"{u.name}:{p.suffix}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class Blame:
    """The file an utterance's failure is reported against: the one being checked or read."""

    def __init__(self, path: Path | None):
        self.path = path


def timed_words(video: Path | None, audio: Path | None, align: Path | None, sid: str,
                blame: Blame) -> list[tuple[int, float, float]]:
    """The utterance's words as (vocabulary index, start ms, end ms), after the checks that need
    no decoding (files present, the alignment readable and matching the sentence its id
    spells, no file empty or over what GRID holds); else :class:`_Broken` saying why."""
    for kind, p in (("video_missing", video), ("audio_missing", audio),
                    ("align_missing", align)):
        if p is None:
            raise _Broken(kind, f"no {kind.split('_')[0]} file for sentence {sid} "
                                f"(have {blame.path})")
    blame.path = align
    try:
        words = align_words(align)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise _Broken("align_bad", str(e)) from None
    if not words:
        raise _Broken("align_bad", f"{align}: no words besides sil/sp")
    expect = sentence_words(sid)
    got = [VOCABULARY[w] for w, _, _ in words]
    if expect is not None and got != expect:
        raise _Broken("align_mismatch", f"{align}: words {' '.join(got)!r} differ from the "
                                        f"sentence its id spells ({' '.join(expect)!r})")
    blame.path = audio
    _check_sizes(video, audio, align)
    return words


def _check_sizes(video: Path, audio: Path, align: Path) -> None:
    if audio.stat().st_size == 0:
        raise _Broken("wav_empty", f"{audio}: empty file")
    for kind, p in (("wav", audio), ("video", video), ("align", align)):  # sizes first
        if (size := p.stat().st_size) > (cap := EXTRACT_LIMITS.ceiling(p.name)):
            raise _Broken(f"{kind}_too_large", f"{p}: {size} bytes, over the {cap} a GRID "
                                               f"{kind} can hold")
