"""Seeded span data for the demo, the tests and the bench: sentences with known entities and
simulated annotators with known error habits.

The sentences come from templates filled with invented names, places, organisations and dates
(Concord's own text, no outside data), or, with `spliced_sentences`, from real sentences given
by the caller with one or two such entity clauses spliced in. Each simulated annotator has one
habit:

- `careful`: copies the gold spans, with a small chance of any of the errors below;
- `boundary_shifter`: often moves a span's end (or start) by one token;
- `type_confuser`: often gives ORG for LOC and LOC for ORG (and PER for ORG);
- `misser`: often leaves an entity out.

Spans are `(start, end, type)` character offsets on the contract's tokens
(`labeling.spans.token_bounds`), sorted, never overlapping.
"""

import random
from typing import NamedTuple

from labeling.spans import token_bounds

TYPES = ("PER", "ORG", "LOC", "DATE")
HABITS = ("careful", "boundary_shifter", "type_confuser", "misser")

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Niklaus",
         "Radia", "Tim", "Margaret", "Ken", "Leslie", "Shafi", "Whitfield", "Sophie", "Juris",
         "Karen"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Wirth",
        "Perlman", "Berners-Lee", "Hamilton", "Thompson", "Lamport", "Goldwasser", "Diffie",
        "Wilson", "Hartmanis", "Sparck Jones"]  # fmt: skip
ORGS = ["Northwind Traders", "Acme Robotics", "Blue Harbor Bank", "Globex", "Initech",
        "Umbrella Analytics", "Stark Logistics", "Wayne Foundation", "Hooli", "Vandelay Imports",
        "Cyberdyne Systems", "Soylent Foods", "Tyrell Labs", "Massive Dynamic"]  # fmt: skip
PLACES = ["London", "Lagos", "Lyon", "Osaka", "Quito", "Tallinn", "Montreal", "Nairobi",
          "New Delhi", "Porto Alegre", "Reykjavik", "Cape Town", "San Jose", "Kraków"]  # fmt: skip
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} on {DATE} .",
    "On {DATE} , {ORG} opened an office in {LOC} .",
    "{PER} met {PER} at the {ORG} conference in {LOC} .",
    "{ORG} said {PER} would lead its team in {LOC} from {DATE} .",
    "Shares of {ORG} rose after {PER} spoke in {LOC} .",
    "The report by {PER} was published on {DATE} .",
    "{PER} moved from {LOC} to {LOC} to work for {ORG} .",
    "A spokesperson for {ORG} declined to comment .",
    "Rain is expected in {LOC} until {DATE} , forecasters said .",
    "{PER} and {PER} founded {ORG} in {DATE} .",
    "Nothing unusual happened at the meeting yesterday .",
    "{ORG} and {ORG} agreed to merge , {PER} told reporters in {LOC} .",
]
CONFUSED = {"ORG": "LOC", "LOC": "ORG", "PER": "ORG", "DATE": "DATE"}
# Entity clauses spliced around a real sentence by `spliced_sentences`: before it, or after it.
LEAD_CLAUSES = [
    "{PER} of {ORG} said :",
    "From {LOC} , {PER} writes :",
    "On {DATE} , {PER} reviewed it :",
    "{ORG} customer {PER} :",
    "Posted in {LOC} on {DATE} :",
    "{PER} ( {ORG} , {LOC} ) :",
]
TAIL_CLAUSES = [
    ", wrote {PER} from {LOC} on {DATE} .",
    ", said {PER} of {ORG} .",
    "- {PER} , {LOC} , {DATE}",
    "( review sent to {ORG} on {DATE} )",
    "{PER} posted this from {LOC} .",
    ", according to {ORG} in {LOC} .",
]


class Sentence(NamedTuple):
    text: str
    spans: list[tuple[int, int, str]]


def _filler(kind: str, rng: random.Random) -> str:
    if kind == "PER":
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind == "ORG":
        return rng.choice(ORGS)
    if kind == "LOC":
        return rng.choice(PLACES)
    return rng.choice([f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1990, 2026)}",
                       f"{rng.choice(MONTHS)} {rng.randint(1990, 2026)}"])  # fmt: skip


def sentences(n: int, *, seed: int = 0) -> list[Sentence]:
    """n sentences with their gold entity spans, seeded."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts, spans, text = rng.choice(TEMPLATES).split(" "), [], ""
        for part in parts:
            piece = part
            if part.startswith("{") and part.endswith("}"):
                piece = _filler(part[1:-1], rng)
            start = len(text) + (1 if text else 0)
            text = f"{text} {piece}" if text else piece
            if piece is not part:
                spans.append((start, len(text), part[1:-1]))
        out.append(Sentence(text, spans))
    return out


def _clause(template: str, at: int, rng: random.Random) -> tuple[str, list[tuple[int, int, str]]]:
    """A clause template filled, and its entity spans as offsets from `at` (where it starts)."""
    text, spans = "", []
    for part in template.split(" "):
        piece = part
        if part.startswith("{") and part.endswith("}"):
            piece = _filler(part[1:-1], rng)
        start = at + len(text) + (1 if text else 0)
        text = f"{text} {piece}" if text else piece
        if piece is not part:
            spans.append((start, start + len(piece), part[1:-1]))
    return text, spans


def spliced_sentences(real_texts: list[str], *, seed: int = 0) -> list[Sentence]:
    """One sentence per real text, with one or two entity clauses spliced in, seeded: a clause
    before it (`LEAD_CLAUSES`), after it (`TAIL_CLAUSES`), or both, a third of the time each.

    The simulation of a span crowd should run on real text, and no named-entity corpus with a
    licence that allows copying it into the repository (CoNLL-2003, OntoNotes) is reachable
    offline; the real sentences therefore come from the caller (the tests use the CC BY 4.0
    review sentences in tests/data/sentiment) and the entities from this module's invented
    fillers. The real words, capitals and proper nouns included, are outside any entity. A
    tail clause that starts with a comma replaces the sentence's final punctuation.
    """
    rng = random.Random(seed)
    out = []
    for real in real_texts:
        text, spans = " ".join(real.split()), []
        shape = rng.randrange(3)  # 0: before, 1: after, 2: both
        if shape != 0:
            tail = rng.choice(TAIL_CLAUSES)
            space = " "
            if tail.startswith(","):
                text, space = text.rstrip(".!? "), ""
            clause, clause_spans = _clause(tail, len(text) + len(space), rng)
            text, spans = f"{text}{space}{clause}", clause_spans
        if shape != 1:
            clause, clause_spans = _clause(rng.choice(LEAD_CLAUSES), 0, rng)
            shift = len(clause) + 1
            spans = clause_spans + [(a + shift, b + shift, kind) for a, b, kind in spans]
            text = f"{clause} {text}"
        out.append(Sentence(text, spans))
    return out


def _shift(span, bounds, rng) -> tuple[int, int, str]:
    """The span grown or shrunk by one token at one end (kept on tokens, never empty)."""
    start, end, kind = span
    starts = [s for s, _ in bounds]
    ends = [e for _, e in bounds]
    first, last = starts.index(start), ends.index(end)
    move = rng.choice(["grow_end", "shrink_end", "grow_start", "shrink_start"])
    if move == "grow_end" and last + 1 < len(bounds):
        last += 1
    elif move == "shrink_end" and last > first:
        last -= 1
    elif move == "grow_start" and first > 0:
        first -= 1
    elif move == "shrink_start" and first < last:
        first += 1
    return bounds[first][0], bounds[last][1], kind


def _flat(spans) -> list[tuple[int, int, str]]:
    """Sorted, overlapping spans dropped (a grown span may reach into its neighbour)."""
    kept = []
    for span in sorted(spans):
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def annotate(sentence: Sentence, habit: str, rng: random.Random, *, rate: float = 0.35):
    """One simulated annotator's spans for the sentence: its habit's error at `rate` per
    entity (a `careful` annotator makes any error at rate / 10)."""
    if habit not in HABITS:
        raise ValueError(f"habit must be one of {', '.join(HABITS)}")
    bounds = token_bounds(sentence.text)
    out = []
    for span in sentence.spans:
        doing = habit
        if habit == "careful":
            doing = rng.choice(HABITS[1:]) if rng.random() < rate / 10 else "careful"
        elif rng.random() >= rate:
            doing = "careful"
        if doing == "misser":
            continue
        if doing == "boundary_shifter":
            span = _shift(span, bounds, rng)
        elif doing == "type_confuser":
            span = (span[0], span[1], CONFUSED[span[2]])
        out.append(span)
    return _flat(out)
