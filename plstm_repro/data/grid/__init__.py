"""GRID audio-visual corpus (Cooke et al. 2006), the raw-data layer of sec. 3.4 of Neil et al. 2016.

34 talkers (speaker 21 has no video) x 1000 sentences of the grammar
``verb colour preposition letter digit adverb`` ("bin blue at f two now"), 51 words. A sentence's
id spells it: one letter per word, ``z`` for zero (``bbaf2n``).

Download (:func:`download_grid`)
    From the corpus site (``BASE_URLS``), per speaker N: ``sN/video/sN.mpg_vcd.zip`` (25 fps
    MPEG-1 video, 75 frames = 3 s), ``sN/audio/sN_50kHz.tar`` (the raw 50 kHz wavs) and
    ``sN/align/sN.tar`` (word alignments), through the resumable downloader of :mod:`.download`.
    No md5 or size is published, so a download is checked against the server's Content-Length
    (there) and each archive by reading every member on extraction (a truncated or corrupt one
    raises :class:`ArchiveError` naming it). The archives are kept under
    ``archives/sN/{video,audio,align}/`` (as tonic keeps its zips; ``keep_archives=False``
    removes them once extracted and placed). ``from_dir`` takes the layouts users have:

    - the corpus site's archives unpacked by kind: ``video/sN/<id>.mpg``, ``audio/sN/<id>.wav``,
      ``align/sN/align/<id>.align``;
    - the Zenodo re-release (doi 10.5281/zenodo.3625687): ``sN/<id>.mpg``,
      ``audio_25k/sN/<id>.wav``, ``alignments/sN/<id>.align``;
    - the archives themselves, of either source (``sN.mpg_vcd.zip``, ``sN_50kHz.tar``, ``sN.tar``,
      ``sN.zip``, ``audio_25k.zip``, ``alignments.zip``), in any folder below ``from_dir``.

    A file's kind comes from its extension and its speaker from the nearest folder named ``sN``
    (or ``sN_...``) above it, else from the archive's name. Archives are untrusted
    (:mod:`.archives`: nothing is written outside the target folder, links are never made).
    Where two wavs of one sentence are found, the one with the higher sample rate is kept.

    The Zenodo copy has several speakers' alignment folders swapped (lhotse's GRID recipe,
    PR #1501/#1502, maps s5/s6, s14/s15, s18/s19, s22/s23, s26/s27, s28/s29, s32/s33, s10-s13
    rotated and s20 -> s21; see ``ZENODO_ALIGNMENT_FOLDERS``; the corpus site's copy is not
    affected). We correct it from the data rather than from that map: each speaker's alignments
    are matched to its videos by sentence id (:func:`match_alignment_folders`). A speaker whose
    own alignment folder holds under half of its video ids takes the folder that holds at
    least half; each correction is printed, recorded in ``layout.json`` with the shares, and
    flagged when it is the known swap. Two speakers share ~1.6% of their sentences (1000 each
    of 64,000 possible), so the test cannot confuse them.

Canonical layout (what :func:`download_grid` leaves under ``root/<folder>``, default ``GRID``)::

    sN/video/<id>.mpg   sN/audio/<id>.wav   sN/align/<id>.align   sN/.complete
    layout.json (sources, alignment-folder corrections)    archives/ (downloads)
    cache/train, cache/test (the stores written by :func:`preprocess_grid`)

Units of the ``.align`` files: 1/25,000 s (40 us; 1,000 units per 40 ms video frame), so
ms = units / 25. Evidence: published GRID alignments end at 74500 (e.g. bbaf2n:
``53000 74500 sil``, quoted in LipNet-style readers) for 3 s utterances (75 frames at 25 fps):
74500 units = 2.98 s; those readers divide by 1000 to get a video frame index ("the begining
frame id of a word"), the same unit. lhotse's GRID recipe divides by 1000 and calls the result
seconds, which would make each utterance 74.5 s long; we do not follow it. The corpus site's
own description of the units was not reachable from here.

Preprocessing (:func:`preprocess_grid`), per utterance, over a process pool:

- video: every frame through OpenCV's Haar frontal-face cascade
  (``cv2.data.haarcascades + "haarcascade_frontalface_default.xml"``, run on the frame scaled to
  ``DETECT_HEIGHT`` rows for speed; the box is mapped back and cut from the full-resolution
  frame), the largest face's box cropped, grayscale, resized to 48x48 (``INTER_AREA``). Where no
  face is found the last good box is reused (frames before the first detection take the first
  box) and the frame is counted. Frame k has ``t = 40 k`` ms (first frame at 0).
- audio: 39-d MFCC (13 from ``python_speech_features.mfcc``, Hamming window, c0 replaced by
  the log frame energy, + ``delta(N=2)`` + delta of the delta), 25 ms windows at a 10 ms hop
  (``mfcc_hi``) and at a 40 ms hop (``mfcc_lo``), ``nfft`` the next power of two of the window
  (2048 at 50 kHz, 1024 at 25 kHz). Only whole windows inside the audio are used (no zero
  padding at the end), and the audio is cut at the video's length.

  **MFCC timestamps are the end of each window**: frame k covers samples
  ``[k hop, k hop + win)`` and has ``t = (k hop + win) / rate`` in ms, i.e. 25, 35, 45, ... ms
  (hi) and 25, 65, 105, ... ms (lo). That is when the frame's audio has been heard in full, so
  a model that reads the network out at a word's end never sees audio after it, and a Phased
  LSTM whose time gate opens at the stream's timestamps updates exactly when the feature could
  exist in an online system. (The window centre would put each feature 12.5 ms before all its
  samples were heard.) The delta features are the usual non-causal regression over +-2 frames
  (delta-delta: +-4), so they use up to 40 ms (hi) / 160 ms (lo) of later audio; the timestamp
  does not include that look-ahead.
- labels: the word segments of the ``.align`` file without ``sil`` and ``sp``, as indices into
  ``VOCABULARY`` with start and end in ms.
- broken inputs are reported with their paths, never a crash halfway: unreadable video,
  truncated video (fewer than 75 frames *and* ending before the last word does: many real
  videos have 74 frames, their last one in the final silence, and are kept), no face in any
  frame, missing video/audio/alignment,
  unreadable or empty wav, audio shorter than the video (by more than one 40 ms frame),
  unreadable alignment (or a word outside the vocabulary, or times past the video), and an
  alignment whose words differ from the sentence its id spells.
- a seeded random 90/10 split of sentences (per speaker, over every sentence id found, so the
  split does not move when a file breaks or another speaker is added).

Two stores (:mod:`.store`) at ``root/<folder>/cache/train`` and ``.../test``; see
``STORE_TABLES``. Record names ``sN/<id>``; per record ``speaker`` and ``no_face`` (frames
without a detected face); ``info`` holds the summary.

The package, one module per stage: :mod:`.corpus` (speakers, grammar, units, alignments),
:mod:`.layout` (download, placement, canonical layout), :mod:`.manifest` (one record per
utterance: paths, speaker, timed words or why it is broken), :mod:`.video` (face crops),
:mod:`.audio` (wavs, MFCCs), :mod:`.features` (one utterance's rows; the process pool),
:mod:`.holdout` (the 90/10 split), :mod:`.cache` (the stores and the run's summary),
:mod:`.recipes` (the registry's functions) and :mod:`.synth` (the SYNTHETIC stand-in).
The batches a model reads from the stores are :mod:`plstm_repro.data.grid_split`'s.
"""

from __future__ import annotations

from ..archives import ArchiveError, Limits
from . import audio, cache, corpus, features, holdout, layout, manifest, video
from .audio import mfcc39, nfft_for, read_wav
from .cache import SETTINGS, STORE_RECORDS, STORE_TABLES, preprocess_grid
from .corpus import (
    ALIGN_UNITS_PER_S,
    DIGITS,
    GRAMMAR,
    VOCABULARY,
    WORD_INDEX,
    _Broken,
    align_words,
    parse_align,
    sentence_words,
)
from .features import process_utterance
from .holdout import split_ids
from .layout import ARCHIVES, download_grid, match_alignment_folders, speaker_urls
from .manifest import Utterance, inventory
from .video import detect_face, read_face_crops

__all__ = [
    "ALIGN_UNITS_PER_S",
    "ARCHIVES",
    "DIGITS",
    "GRAMMAR",
    "SETTINGS",
    "STORE_RECORDS",
    "STORE_TABLES",
    "VOCABULARY",
    "WORD_INDEX",
    "ArchiveError",
    "Limits",
    "Utterance",
    "_Broken",
    "align_words",
    "audio",
    "cache",
    "corpus",
    "detect_face",
    "download_grid",
    "features",
    "holdout",
    "inventory",
    "layout",
    "manifest",
    "match_alignment_folders",
    "mfcc39",
    "nfft_for",
    "parse_align",
    "preprocess_grid",
    "process_utterance",
    "read_face_crops",
    "read_wav",
    "sentence_words",
    "speaker_urls",
    "split_ids",
    "video",
]
