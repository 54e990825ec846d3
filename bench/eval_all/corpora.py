"""Readers for the reference corpora in the shared data folder (research data: read, never shipped)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from defusedxml import ElementTree as SafeET


@dataclass(frozen=True)
class GoldToponym:
    start: int
    end: int
    name: str
    lon: float | None  # None when the corpus gives no coordinates for it
    lat: float | None


@dataclass(frozen=True)
class Article:
    text: str
    toponyms: tuple[GoldToponym, ...]


def _float(el) -> float | None:
    if el is None or el.text is None or not el.text.strip():
        return None
    return float(el.text)


def _realign(text: str, name: str, start: int, end: int, slack: int = 8) -> tuple[int, int]:
    """The corpora's offsets drift by a character or two (1-based starts, stripped newlines): find the name."""
    if text[start:end] == name or not name:
        return start, end
    lo = max(0, start - slack)
    at = text.find(name, lo, end + slack + len(name))
    return (at, at + len(name)) if at >= 0 else (start, end)


def _read(path: Path, list_tag: str, item_tag: str, name_tag: str, coords) -> list[Article]:
    """Articles with a <text> and a list of annotated toponyms with character offsets into it."""
    root = SafeET.parse(path).getroot()
    out = []
    for art in root.iter("article"):
        text = art.findtext("text") or ""
        tops = []
        for t in art.iterfind(f"{list_tag}/{item_tag}"):
            name = t.findtext(name_tag) or ""
            start, end = _realign(text, name, int(t.findtext("start")), int(t.findtext("end")))
            lon, lat = coords(t)
            tops.append(GoldToponym(start, end, name, lon, lat))
        out.append(Article(text, tuple(tops)))
    return out


def geowebnews(path: Path) -> list[Article]:
    return _read(path, "toponyms", "toponym", "extractedName",
                 lambda t: (_float(t.find("longitude")), _float(t.find("latitude"))))


def geovirus(path: Path) -> list[Article]:
    return _read(path, "locations", "location", "name", lambda t: (_float(t.find("lon")), _float(t.find("lat"))))


def trnews(path: Path) -> list[Article]:
    return _read(path, "toponyms", "toponym", "phrase",
                 lambda t: (_float(t.find("gaztag/lon")), _float(t.find("gaztag/lat"))))


def csv_rows(path: Path) -> list[dict[str, str]]:
    """CSV rows with stripped header names (CrisisLex headers carry leading spaces)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        return [dict(zip(header, row)) for row in reader if row]
