"""The GRID corpus itself: its speakers, its sentence grammar and vocabulary, its time units and
the ``.align`` word alignments (the facts every other stage of the package reads)."""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError

ALL_SPEAKERS = tuple(range(1, 35))
NO_VIDEO = (21,)  # speaker 21's video was never released
KINDS = {".mpg": "video", ".wav": "audio", ".align": "align"}
EXT = {v: k for k, v in KINDS.items()}

VERBS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvwxyz" if c != "w")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
GRAMMAR = (VERBS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
VOCABULARY = VERBS + COLOURS + PREPOSITIONS + LETTERS + DIGITS + ADVERBS
WORD_INDEX = {w: i for i, w in enumerate(VOCABULARY)}
SILENCE = ("sil", "sp")

FPS = 25
FRAME_MS = 1000.0 / FPS
N_FRAMES = 75  # every GRID video: 3 s at 25 fps
ALIGN_UNITS_PER_S = 25_000  # 1 unit = 40 us = 1/1000 of a video frame
AUDIO_SLACK_MS = FRAME_MS  # audio may end this much before the video and still count as whole


class _Broken(Exception):
    """Why an utterance cannot be used: ``kind`` (a short tag the summary counts) and ``why``."""

    def __init__(self, kind: str, why: str):
        super().__init__(why)
        self.kind, self.why = kind, why


def _spk(n: int) -> str:
    return f"s{n}"


def resolve_speakers(speakers: list[int] | None, echo=print) -> list[int]:
    """Validate speaker numbers (1..34), drop 21 (no video) with a message, sort, dedupe."""
    speakers = list(ALL_SPEAKERS) if speakers is None else [int(s) for s in speakers]
    bad = [s for s in speakers if s not in ALL_SPEAKERS]
    if bad:
        shown_bad = ", ".join(map(str, bad[:5])) + (f", ... ({len(bad)} in all)"
                                                    if len(bad) > 5 else "")
        raise DataError(f"GRID speakers are 1..34, got {shown_bad}")
    for s in NO_VIDEO:
        if s in speakers:
            echo(f"GRID: skipping speaker {s} (the corpus has no video for it)")
    return sorted(set(speakers) - set(NO_VIDEO))


def sentence_words(sid: str) -> list[str] | None:
    """The six words a GRID sentence id spells (``bbaf2n`` -> bin blue at f two now);
    None when ``sid`` is not of that form."""
    if len(sid) != 6:
        return None
    out = []
    for ch, group in zip(sid.lower(), GRAMMAR, strict=True):
        if group is LETTERS:
            word = ch if ch in LETTERS else None
        elif group is DIGITS:
            word = DIGITS[0] if ch in "z0" else DIGITS[int(ch)] if ch.isdigit() else None
        else:
            word = next((w for w in group if w[0] == ch), None)
        if word is None:
            return None
        out.append(word)
    return out


def parse_align(path: Path) -> list[tuple[float, float, str]]:
    """All segments of a GRID ``.align`` file as (start ms, end ms, word), ``sil``/``sp`` included.

    Lines are ``start end word`` in 1/25,000 s. Raises ValueError naming the file and line for
    anything else (fields, non-integers, end before start, segments out of order)."""
    path = Path(path)
    text = path.read_text(encoding="ascii", errors="strict")
    segs, last = [], 0
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        if len(f) != 3 or not f[0].isdigit() or not f[1].isdigit():
            raise DataError(f"{path}:{i}: expected 'start end word' with integer times in "
                            f"1/25000 s, got {line!r}")
        a, b = int(f[0]), int(f[1])
        if b < a or a < last:
            raise DataError(f"{path}:{i}: segment {a}-{b} ends before it starts or overlaps "
                            f"the previous one")
        last = b
        segs.append((a * 1000.0 / ALIGN_UNITS_PER_S, b * 1000.0 / ALIGN_UNITS_PER_S, f[2]))
    if not segs:
        raise DataError(f"{path}: no segments")
    return segs


def align_words(path: Path) -> list[tuple[int, float, float]]:
    """The words of an ``.align`` file (``sil``, ``sp`` dropped) as (vocabulary index, start ms,
    end ms). ValueError (naming the file) for a word outside ``VOCABULARY``."""
    out = []
    for a, b, w in parse_align(path):
        if w in SILENCE:
            continue
        if w not in WORD_INDEX:
            raise DataError(f"{path}: word {w!r} is not in the 51-word GRID vocabulary")
        out.append((WORD_INDEX[w], a, b))
    return out

