"""What a visitor is told about the app's state: one short line (model, what it is, library size)
and, apart, the details an operator needs (why this model, what failed, how to fix it).

On a public demo the details never show server file paths: messages written for the operator
(a checkpoint location, a Milvus Lite file) are redacted here, once, for every front end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# An absolute POSIX path or a home-relative one, not the path part of a URL (preceded by a host).
_PATH = re.compile(r"(?<![\w:/.\-~])~?/(?:[\w.\-+=@%]+/)*[\w.\-+=@%]*")

SHORT = {  # what each model is, in a few words a visitor reads
    "panns-cnn14": "AudioSet sound tagger",
    "aisfx": "sound-effects model, runs offline",
    "mfcc": "MFCC baseline (no learning)",
}


def redact_paths(text: str, known: tuple[str, ...] = ()) -> str:
    """Server file paths replaced by `[server path]`: absolute ones, and the `known` relative ones
    (the data folder as configured). URLs are kept: they are public already."""
    for path in sorted({k for k in known if k and k not in (".", "/")}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w/.\-]){re.escape(path)}(?:/[\w.\-+=@%]*)*", "[server path]", text)
    return _PATH.sub(lambda m: m.group(0) if m.group(0) in ("/", "~/") else "[server path]", text)


@dataclass
class AppStatus:
    state: str  # loading | ready | no_model | no_library
    line: str  # one line of Markdown for the header
    details: str  # Markdown for a collapsed element: reasons and the operator's how-to
    model: str | None = None
    count: int | None = None
    labels: dict[str, int] | None = None  # sounds per category (ready only)

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def fallback_reason(note: str) -> str | None:
    """The reason `auto` did not use PANNs, from the embedder's note (None when it did)."""
    marker = " because "
    return note.split(marker, 1)[1] if note.startswith("auto: fell back") and marker in note else None


def ready_status(model: str, dim: int, description: str, note: str, labels: dict[str, int], *, public: bool,
                 known: tuple[str, ...] = ()) -> AppStatus:
    what = SHORT.get(model, description)
    count, categories = sum(labels.values()), len(labels)
    line = f"**{model}** · {what} · **{count} sound{'s' * (count != 1)}** in {categories} categor{'ies' if categories != 1 else 'y'}"
    details = [f"**Model:** {description}. A result's score is the cosine similarity of the two embeddings (1 = identical); "
               "its percentile says how it ranks among pairs of the library's own sounds (99: only 1% of pairs are as alike)."]
    reason = fallback_reason(note)
    if reason:
        line += " · _PANNs unavailable_"
        details.append(f"**Why not PANNs Cnn14:** {reason}")
    elif note:
        details.append(f"**Model choice:** {note}")
    return AppStatus("ready", line, _clean("\n\n".join(details), public, known), model, count, labels)


def loading_status() -> AppStatus:
    return AppStatus("loading", "_Loading the model…_ (the first start may download it; this page updates when it is ready)",
                     "The app is serving while the model loads; searches start working as soon as it is ready.")


def failed_status(kind: str, reason: str, *, public: bool, known: tuple[str, ...] = ()) -> AppStatus:
    """kind: no_model (no model could be loaded) or no_library (the store cannot be opened)."""
    if kind == "no_model":
        line = "**No model is available**, so searching is off. The operator can fix it (details below)."
    else:
        line = "**The library cannot be opened**, so searching is off. The operator can fix it (details below)."
    return AppStatus(kind, line, _clean(reason, public, known))


def _clean(text: str, public: bool, known: tuple[str, ...] = ()) -> str:
    return redact_paths(text, known) if public else text
