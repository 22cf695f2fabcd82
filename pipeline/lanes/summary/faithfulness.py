"""Faithfulness of a generated summary to its source: checkable spans, each looked up in the source.

Pure Python, no model. ``score_faithfulness`` pulls the summary's *checkable spans*
(numbers, times, dates, named entities, rare content words), normalises them and
looks each one up in an index of the source:

* numbers — digits, decimals, thousands separators, percentages, money, magnitudes
  ("1.2 million"), number words ("three", "twenty-one", "a dozen") -> one float value;
  a number is supported when the same value occurs anywhere in the source. Currency and
  the %-sign are not compared (value only). A bare "one" is not checked (mostly a pronoun).
* times — "7 pm", "7:30 p.m.", "19:00", "noon" -> minutes of the day (an hour without
  am/pm is ambiguous and matches either); supported when a source time agrees.
* dates — "May 3", "3 May", "May 3rd, 2024", "the third of May", "2024-05-03", "5/3"
  (either order), "May 2024", a bare month -> (year, month, day) with unknown parts left
  open; supported when a source date agrees on every part the summary states (a year the
  source date leaves open must occur somewhere in the source). Weekdays are their own
  spans: supported when the source names the day or a full source date falls on it.
* named entities — runs of capitalised tokens (with "of", "de", "van"... inside), not at a
  sentence start unless the first word is not a common word; titles (Dr, Ms...) and
  company suffixes (Inc, Corp, Ltd...) are ignored; supported when every remaining token
  occurs in the source (so "Acme" for "Acme Corp" passes, "Acme Labs" does not); an
  all-caps token also passes as the initials of a capitalised run in the source.
* rare content words — not a stopword, not one of ~500 common English words, not a
  summary "meta" word (reviewer, customer, says, complains...), 3+ letters; supported
  when its stem occurs in the source or shares a long prefix with a source stem
  (delivery/delivered, replacement/replaced).

Score: weighted share of supported spans, weights number/time/date 3, entity 2, word 1;
then the *hard-fact cap*: any unsupported number, time or date caps the score at 0.5
(a wrong figure is a factual error however much else is right). A summary with no
checkable span scores 1.0 with ``checked == 0`` (degeneracy is :func:`detect_degenerate`'s job).
See docs/faithfulness.md for the measured span recall/precision and the threshold.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass, field

from pipeline.lanes.summary.extractive import STOPWORDS, sentence_spans, split_sentences, stem, word_tokens

__all__ = ["FaithfulnessReport", "Span", "score_faithfulness", "detect_degenerate", "extract_spans", "WEIGHTS",
           "HARD_FACT_CAP", "number_value", "normalized"]

WEIGHTS = {"number": 3.0, "time": 3.0, "date": 3.0, "entity": 2.0, "word": 1.0}
HARD_FACT_CAP = 0.5
_HARD_KINDS = frozenset({"number", "time", "date"})


@dataclass(frozen=True)
class FaithfulnessReport:
    score: float                # 0..1, 1 = every checked span supported by the source
    unsupported: list[str]      # spans of the summary not supported by the source (surface text)
    checked: int                # number of spans checked
    spans: tuple[Span, ...] = field(default=(), repr=False, compare=False)  # every checked span, for debugging


@dataclass(frozen=True)
class Span:
    text: str
    kind: str                   # "number" | "time" | "date" | "entity" | "word"
    start: int
    end: int
    supported: bool = False
    hard: bool = False          # a hard fact: number, time, date, or a confident name (see HARD_FACT_CAP)


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------
# ~500 of the most common English content words (function words are in STOPWORDS). Kept
# modest on purpose: every word here is one the checker can no longer catch if invented.
COMMON_WORDS: frozenset[str] = frozenset(
    """
    able accept across act action actually add again age ago agree air allow almost alone along already always
    amount another answer anyone anything anyway appear area arm around ask away back bad bag bar base basic be
    become bed begin behind believe big bit black blue board body book both box boy break bring brother brown
    build business busy buy call car care carry case cause center central certain chance change check child
    city class clear close cold color come common company complete consider continue control cost could country
    course cover cut dark data day dead deal decide deep different difficult do door down draw during early easy
    eat effect else end enough entire even evening event every everyone everything example experience eye face
    fact fall family far fast father feel feeling few field fight fill final finally find fine finish fire first
    five follow food form forward four free friend front full fun game general get girl give glad go good got
    great green ground group grow guy half hand happen happy hard head hear heart help high hold home hope hot
    hour house huge human idea important include inside instead interest issue item job keep key kid kind know
    large last late later lead learn least leave less let level life light like line list little live local
    long look lose lot love low main make man many matter maybe mean member might mind minute miss moment money
    month morning mother move much music name near need never new next nice night none normal nothing notice now
    number offer office often oh ok okay old once open order part party pass past pay people perhaps person pick
    place plan play point possible power pretty price probably problem program provide public pull put question
    quick quickly quite range rather reach read ready real really reason receive red remember report rest result
    return right road room run said same say school second see seem sell send serve service set several short
    show side simple since sit size small so someone something sometimes soon sort sound speak special stand
    start state stay step still stop story street strong stuff sure system take talk team tell term test than
    thank thanks thing think three time today together told tomorrow top total toward try turn two type under
    understand until upon use used usual usually value want watch water way week well went whole why wide will
    win without woman word work world worth would write wrong yeah year yes yesterday young
    able also around available based best better bigger certainly clearly currently definitely especially
    exactly generally however immediately likely mostly nearly often overall particularly possibly probably
    recently simply slightly still sure truly usually
    about approximately roughly around nearly almost over under more less plus minus up least most some
    excellent great good bad poor nice amazing awesome terrible awful fantastic wonderful decent solid
    lovely perfect fine okay mixed positive negative
    percent percentage cent cents dollar dollars euro euros usd eur gbp
    """.split()
)
# Words summaries use to talk *about* the text; never evidence of hallucination on their own.
META_WORDS: frozenset[str] = frozenset(
    """
    summary summarize summarized text article post review reviewer reviewers customer customers user users
    author writer poster caller client clients buyer buyers guest guests visitor visitors reader readers
    says say stated states state mentions mentioned mention notes noted note describes described describe
    explains explained explain reports reported report complains complained complain complaint praises praised
    praise highlights highlighted highlight expresses expressed express discusses discussed discuss adds added
    claims claimed claim argues argued asks asked requests requested request announces announced announce
    according overall message update details detail information issue issues experience regarding
    """.split()
)
_TITLES = frozenset("mr mrs ms miss dr prof sir madam mx st".split())
_CORP = frozenset("inc corp corporation co company ltd llc plc gmbh ag sa group holdings limited".split())
_CONNECTORS = frozenset("of de del la le van von der du da di & and the for".split())   # ignored inside names
_JOINERS = frozenset("of de del la le van von der du da di &".split())                   # may join a name's parts

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split())}
_ORDINALS.update({"thirtieth": 30, "twenty-first": 21, "twenty-second": 22, "twenty-third": 23,
                  "twenty-fourth": 24, "twenty-fifth": 25, "twenty-sixth": 26, "twenty-seventh": 27,
                  "twenty-eighth": 28, "twenty-ninth": 29, "thirty-first": 31})
_MAG = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "bn": 1e9, "b": 1e9, "billion": 1e9}

_NUMWORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|" \
           r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|" \
           r"thousand|million|billion|dozen)"
_NUMWORD_RE = re.compile(
    rf"\b(?:(?:a|an|half\s+a)\s+(?=(?:dozen|hundred|thousand|million|billion)\b))?{_NUMWORD}"
    rf"(?:(?:\s+and\s+|\s*-\s*|\s+){_NUMWORD})*\b",
    re.IGNORECASE,
)
_DIGIT_RE = re.compile(
    r"(?<![\w.,])(?P<cur>[$€£¥]\s?)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:st|nd|rd|th)?"
    r"(?:\s?(?P<mag>k|K|m|M|mn|bn|million|billion|thousand)\b)?"
    r"(?:\s?(?P<pct>%|percent\b|per\s?cent\b))?"
    r"(?![\w])"
)


def _words_value(text: str) -> float | None:
    """'twenty-one' -> 21, 'a dozen' -> 12, 'three hundred and five' -> 305, 'half a dozen' -> 6."""
    words = [w for w in re.split(r"[\s\-]+", text.lower()) if w and w != "and"]
    if not words:
        return None
    half = False
    if words[:2] == ["half", "a"]:
        half, words = True, words[2:]
    elif words[0] in ("a", "an"):
        words = ["one"] + words[1:]
    total, current, seen = 0.0, 0.0, False
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "dozen":
            current = (current or 1) * 12
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in _SCALES:
            total += (current or 1) * _SCALES[w]
            current = 0
        else:
            return None
        seen = True
    if not seen:
        return None
    value = total + current
    return value / 2 if half else value


def number_value(text: str) -> float | None:
    """Numeric value of a number span: '1,200' -> 1200, '$2.50' -> 2.5, '40%' -> 40, '1.2 million' -> 1.2e6, 'three' -> 3."""
    m = _DIGIT_RE.fullmatch(text.strip())
    if m:
        value = float(m.group("num").replace(",", ""))
        if m.group("mag"):
            value *= _MAG[m.group("mag").lower()]
        return value
    return _words_value(text)


# --------------------------------------------------------------------------------------------
# Dates and times
# --------------------------------------------------------------------------------------------
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
         r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAY_RE = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b", re.IGNORECASE)
_ORD_WORD = "|".join(sorted(_ORDINALS, key=len, reverse=True))


def _day_group(num: str, word: str) -> str:
    """A day of the month: "3", "3rd", "the third"."""
    return rf"(?:(?P<{num}>\d{{1,2}})(?:st|nd|rd|th)?|(?:the\s+)?(?P<{word}>{_ORD_WORD}))"


_DATE_PATTERNS = [
    ("iso", re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")),
    ("slash", re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?\b")),
    ("md", re.compile(rf"\b(?P<mon>{_MONTH})\.?\s+{_day_group('d', 'dw')}(?:,?\s+(?P<y>\d{{4}}))?(?![\d:])")),
    ("dm", re.compile(rf"(?<![\d.,]){_day_group('d', 'dw')}(?:\s+of)?\s+(?P<mon>{_MONTH})\b\.?(?:,?\s+(?P<y>\d{{4}}))?")),
    ("my", re.compile(rf"\b(?P<mon>{_MONTH})\.?,?\s+(?P<y>\d{{4}})\b")),
    ("m", re.compile(rf"\b(?P<mon>{_MONTH})\b")),
]

_TIME_PATTERNS = [
    re.compile(r"\b(?P<h>\d{1,2})(?:[:.](?P<mi>[0-5]\d))?\s?(?P<ap>[ap]\.m\.|[ap]\.?m\b)", re.IGNORECASE),
    re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<mi>[0-5]\d)\b(?:\s?(?:h|hrs)\b)?"),
    re.compile(r"\b(?P<h>\d{1,2})\s+o'?clock\b", re.IGNORECASE),
    re.compile(r"\b(?P<word>noon|midday|midnight)\b", re.IGNORECASE),
]

Date = tuple[int | None, int | None, int | None]  # year, month, day


def _year(text: str | None) -> int | None:
    if not text:
        return None
    y = int(text)
    return y + 2000 if y < 100 else y


def _parse_date(kind: str, m: re.Match[str]) -> list[Date]:
    g = m.groupdict()
    if kind == "iso":
        return [(int(g["y"]), int(g["m"]), int(g["d"]))]
    if kind == "slash":
        a, b, y = int(g["a"]), int(g["b"]), _year(g["y"])
        out: list[Date] = []
        if 1 <= a <= 12 and 1 <= b <= 31:
            out.append((y, a, b))
        if 1 <= b <= 12 and 1 <= a <= 31 and a != b:
            out.append((y, b, a))
        return out
    month = _MONTHS[g["mon"].lower().rstrip(".")]
    day = None
    if g.get("d"):
        day = int(g["d"])
    elif g.get("dw"):
        day = _ORDINALS[g["dw"].lower()]
    if day is not None and not 1 <= day <= 31:
        return []
    return [(_year(g.get("y")), month, day)]


def _is_modal_may(text: str, m: re.Match[str], sentence_starts: set[int]) -> bool:
    """A bare "May"/"march" that is not a month: lower-case, or sentence-initial "May" (modal)."""
    word = m.group()
    if word[0].islower():
        return True
    return word.lower() == "may" and m.start() in sentence_starts


def _find_dates(text: str, sentence_starts: set[int]) -> list[tuple[int, int, list[Date]]]:
    found: list[tuple[int, int, list[Date]]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            if kind in ("md", "dm", "my", "m") and m.group("mon")[0].islower():
                continue
            if kind == "m" and _is_modal_may(text, m, sentence_starts):
                continue
            if kind == "slash" and re.match(r"[/\d]", text[m.end():m.end() + 1] or " "):
                continue
            dates = _parse_date(kind, m)
            if dates:
                found.append((m.start(), m.end(), dates))
                taken.append((m.start(), m.end()))
    return sorted(found)


def _find_times(text: str) -> list[tuple[int, int, set[int]]]:
    found: list[tuple[int, int, set[int]]] = []
    for pattern in _TIME_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e, _ in found):
                continue
            g = m.groupdict()
            if g.get("word"):
                minutes = {0} if g["word"].lower() == "midnight" else {720}
            else:
                h, mi = int(g["h"]), int(g.get("mi") or 0)
                ap = (g.get("ap") or "").lower().replace(".", "")
                if ap:
                    if not 1 <= h <= 12:
                        continue
                    h = h % 12 + (12 if ap == "pm" else 0)
                    minutes = {h * 60 + mi}
                elif h > 23:
                    continue
                elif 1 <= h <= 12:
                    minutes = {(h % 12) * 60 + mi, (h % 12 + 12) * 60 + mi}
                else:
                    minutes = {h * 60 + mi}
            found.append((m.start(), m.end(), minutes))
    return sorted(found)


# --------------------------------------------------------------------------------------------
# Source index
# --------------------------------------------------------------------------------------------
def _prefix_match(a: str, b: str) -> bool:
    """Derivational fallback on stems: a long common prefix (delivery/delivered, replacement/replaced)."""
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= max(5, min(len(a), len(b)) - 2)


class _SourceIndex:
    def __init__(self, source: str) -> None:
        self.text = source
        self.lower = source.lower()
        starts = {s for s, _ in sentence_spans(source)}
        self.numbers: set[float] = set()
        for m in _DIGIT_RE.finditer(source):
            raw = float(m.group("num").replace(",", ""))
            self.numbers.add(raw)
            if m.group("mag"):
                self.numbers.add(raw * _MAG[m.group("mag").lower()])
        for m in re.finditer(r"\d+(?:\.\d+)?", source):  # digits inside dates/times/codes too
            self.numbers.add(float(m.group()))
        for m in _NUMWORD_RE.finditer(source):
            value = _words_value(m.group())
            if value is not None:
                self.numbers.add(value)
            for w in re.split(r"[\s\-]+", m.group().lower()):  # "three hundred" also vouches for 3
                if w in _UNITS:
                    self.numbers.add(float(_UNITS[w]))
        for w, v in _ORDINALS.items():
            if re.search(rf"\b{w}\b", self.lower):
                self.numbers.add(float(v))
        self.times: set[int] = set()
        for _, _, minutes in _find_times(source):
            self.times |= minutes
        self.dates: list[Date] = []
        for _, _, dates in _find_dates(source, starts):
            self.dates.extend(dates)
        self.months = {d[1] for d in self.dates if d[1]}
        self.weekdays = {_WEEKDAYS[m.group(1).lower()] for m in _WEEKDAY_RE.finditer(source)}
        for y, mo, d in self.dates:
            if y and mo and d:
                try:
                    self.weekdays.add(_dt.date(y, mo, d).weekday())
                except ValueError:
                    pass
        tokens = word_tokens(source)
        self.stems: set[str] = set()
        for tok, _, _ in tokens:
            self.stems.add(stem(tok))
            if "-" in tok:
                self.stems.update(stem(p) for p in tok.split("-") if p)
        self.words: set[str] = {t.lower().replace("’", "'").removesuffix("'s") for t, _, _ in tokens}
        self._by_prefix: dict[str, list[str]] = {}
        for s in self.stems:
            self._by_prefix.setdefault(s[:4], []).append(s)
        # initials of capitalised runs, for acronyms ("MTA" for "Metro Transit Authority")
        self.initials: set[str] = set()
        # (any run of non-stopwords, so "AC" matches "air conditioning"; runs are capped at 6 words)
        run: list[str] = []
        for t, _, _ in tokens + [("", 0, 0)]:
            if t and t.lower() not in STOPWORDS and not t.isdigit():
                run.append(t)
                continue
            if t.lower() in ("of", "and", "&", "for") and run:
                continue
            for i in range(len(run)):
                for j in range(i + 2, min(len(run), i + 6) + 1):
                    self.initials.add("".join(w[0] for w in run[i:j]).lower())
            run = []

    def has_stem(self, s: str) -> bool:
        if s in self.stems:
            return True
        if len(s) < 5:
            return False
        return any(_prefix_match(s, c) for c in self._by_prefix.get(s[:4], ()))

    def has_word(self, token: str) -> bool:
        if self.has_stem(stem(token)):
            return True
        if "-" in token:
            parts = [p for p in token.split("-") if p]
            return bool(parts) and all(self.has_stem(stem(p)) or p.lower() in STOPWORDS for p in parts)
        return False

    def date_supported(self, candidates: list[Date]) -> bool:
        for y, mo, d in candidates:
            if mo is not None and d is None and y is None:
                if mo in self.months:
                    return True
                continue
            for sy, smo, sd in self.dates:
                if mo is not None and smo != mo:
                    continue
                if d is not None and sd != d:
                    continue
                if y is not None and sy != y and not (sy is None and float(y) in self.numbers):
                    continue
                return True
        return False


# --------------------------------------------------------------------------------------------
# Span extraction
# --------------------------------------------------------------------------------------------
_COMMON_STEMS = frozenset(stem(w) for w in COMMON_WORDS | META_WORDS)


@dataclass(frozen=True)
class _SpanData:
    text: str
    kind: str
    start: int
    end: int
    raw_kind: str
    data: object


def _is_cap(token: str) -> bool:
    return token[:1].isupper() or (any(c.isupper() for c in token[1:]) and token[:1].isalpha())


def _sentence_starts(text: str) -> set[int]:
    starts = set()
    for s, _ in sentence_spans(text):
        m = re.match(r"[\"'“‘(\[\s\-*•]*", text[s:])
        starts.add(s + (m.end() if m else 0))
    for m in re.finditer(r"[:;]\s+[\"'“‘(]?", text):  # "Summary: The ..." — after a colon a capital proves nothing
        starts.add(m.end())
    return starts


def extract_spans(summary: str) -> list[Span]:
    """The checkable spans of ``summary`` (unverified), in text order."""
    return [Span(x.text, x.kind, x.start, x.end) for x in _extract(summary)]


def _extract(summary: str) -> list[_SpanData]:
    starts = _sentence_starts(summary)
    spans: list[tuple[int, int, str, object]] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return not any(s < te and ts < e for ts, te in taken)

    def add(s: int, e: int, kind: str, data: object) -> None:
        spans.append((s, e, kind, data))
        taken.append((s, e))

    for s, e, minutes in _find_times(summary):
        add(s, e, "time", minutes)
    for s, e, dates in _find_dates(summary, starts):
        if free(s, e):
            add(s, e, "date", dates)
    for m in _WEEKDAY_RE.finditer(summary):
        if free(m.start(), m.end()):
            add(m.start(), m.end(), "weekday", _WEEKDAYS[m.group(1).lower()])
    for m in _DIGIT_RE.finditer(summary):
        if free(m.start(), m.end()):
            add(m.start(), m.end(), "number", number_value(m.group()))
    for m in _NUMWORD_RE.finditer(summary):
        if not free(m.start(), m.end()):
            continue
        if m.group().lower() in ("one", "zero"):   # "one of the", "zero issues": not a checkable figure
            continue
        value = _words_value(m.group())
        if value is not None:
            add(m.start(), m.end(), "number", value)

    tokens = word_tokens(summary)
    i = 0
    while i < len(tokens):
        tok, s, e = tokens[i]
        if not free(s, e) or not _is_cap(tok) or tok in ("I", "I'm", "I've", "I'd", "I'll") or tok.isdigit():
            i += 1
            continue
        low = tok.lower().replace("’", "'")
        if s in starts and (low in STOPWORDS or low in COMMON_WORDS or low in META_WORDS or low in _CONNECTORS):
            i += 1
            continue
        j, end = i, e
        while j + 1 < len(tokens):
            ntok, ns, ne = tokens[j + 1]
            gap = summary[end:ns]
            prev = tokens[j][0].lower()
            if not (gap.strip() == "" or (gap.strip() == "." and prev in _TITLES)) or "\n" in gap:
                break
            if not free(ns, ne) or ns in starts:
                break
            if _is_cap(ntok) and not ntok.isdigit():
                j, end = j + 1, ne
                continue
            # a connector inside a name: "Bank of America", "Johnson & Johnson"
            if ntok.lower() in _JOINERS and j + 2 < len(tokens) and _is_cap(tokens[j + 2][0]) \
                    and summary[ne:tokens[j + 2][1]].strip() == "" and free(*tokens[j + 2][1:]):
                j, end = j + 2, tokens[j + 2][2]
                continue
            break
        add(s, end, "entity", s not in starts or j > i)  # data: a "confident" name (hard fact)
        i = j + 1

    for tok, s, e in tokens:
        if not free(s, e):
            continue
        low = tok.lower().replace("’", "'")
        if len(low) < 3 or not re.search(r"[a-z]", low) or re.search(r"\d", low):
            continue
        if low in STOPWORDS or low in COMMON_WORDS or low in META_WORDS or stem(low) in _COMMON_STEMS:
            continue
        if "-" in low and all(p in STOPWORDS or p in COMMON_WORDS or stem(p) in _COMMON_STEMS
                              for p in low.split("-") if p):
            continue
        add(s, e, "word", None)

    return [_SpanData(summary[s:e], "date" if kind == "weekday" else kind, s, e, kind, data)
            for s, e, kind, data in sorted(spans, key=lambda x: x[0])]


def _entity_supported(text: str, index: _SourceIndex) -> bool | None:
    """True/False, or None when nothing checkable is left (a bare title or company suffix)."""
    toks = [t for t, _, _ in word_tokens(text)]
    toks = [t for t in toks if t.lower().replace("’", "'").removesuffix("'s") not in _TITLES | _CORP | _CONNECTORS]
    if not toks:
        return None
    for t in toks:
        # names are compared as words, not stems ("Tim" must not match "time"); a long shared
        # prefix still covers derivations like Europe/European
        w = t.lower().replace("’", "'").removesuffix("'s")
        if w in index.words or (len(w) >= 5 and any(_prefix_match(w, x) for x in index.words if x[:4] == w[:4])):
            continue
        if "-" in w and all(p in index.words for p in w.split("-") if p):
            continue
        if t.isupper() and len(t) >= 2 and t.lower() in index.initials:
            continue
        return False
    return True


def score_faithfulness(source: str, summary: str) -> FaithfulnessReport:
    """Check the summary's numbers, times, dates, names and rare words against the source (see module doc)."""
    if not summary or not summary.strip():
        return FaithfulnessReport(score=1.0, unsupported=[], checked=0)
    index = _SourceIndex(source or "")
    checked: list[Span] = []
    for sp in _extract(summary):
        kind, data = sp.raw_kind, sp.data
        if kind == "number":
            ok: bool | None = data is not None and float(data) in index.numbers  # type: ignore[arg-type]
        elif kind == "time":
            ok = bool(data & index.times) or _time_in_numbers(data, index)  # type: ignore[operator, arg-type]
        elif kind == "date":
            ok = index.date_supported(data)  # type: ignore[arg-type]
        elif kind == "weekday":
            ok = data in index.weekdays
        elif kind == "entity":
            ok = _entity_supported(sp.text, index)
        else:
            ok = index.has_word(sp.text)
        if ok is None:
            continue
        hard = sp.kind in _HARD_KINDS or (kind == "entity" and bool(data))
        checked.append(Span(sp.text, sp.kind, sp.start, sp.end, bool(ok), hard))
    if not checked:
        return FaithfulnessReport(score=1.0, unsupported=[], checked=0)
    total = sum(WEIGHTS[s.kind] for s in checked)
    good = sum(WEIGHTS[s.kind] for s in checked if s.supported)
    score = good / total
    if any(not s.supported and s.hard for s in checked):
        score = min(score, HARD_FACT_CAP)
    unsupported = []
    for s in checked:
        if not s.supported and s.text not in unsupported:
            unsupported.append(s.text)
    return FaithfulnessReport(score=round(score, 4), unsupported=unsupported, checked=len(checked), spans=tuple(checked))


def _time_in_numbers(minutes: set[int], index: _SourceIndex) -> bool:
    """'7 pm' is also supported by a source that says 'at 7' with 'evening'/'tonight' nearby — keep it simple:
    a whole-hour time whose 12-hour figure occurs as a number next to a time-ish word in the source."""
    for m in minutes:
        h, mi = divmod(m, 60)
        if mi:
            continue
        h12 = h % 12 or 12
        if re.search(rf"\b(?:at|by|from|until|till|before|after)\s+{h12}\b(?![:.\d])", index.lower):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Degenerate outputs
# --------------------------------------------------------------------------------------------
# Chat-style replies instead of a summary. Each is flagged only when the matched phrase is
# not in the source itself (a support ticket may well say "I'm sorry" or "you should").
_ANSWER_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|hello|hi there|hi)\s*[!,.:]",
    r"^\W*here(?:'s|’s| is| are)\b",
    r"\bi(?:'m|’m| am) (?:sorry|afraid|glad|happy to|here to)\b",
    r"\bi apologi[sz]e\b",
    r"\bas an ai\b",
    r"\bas a (?:large |ai )?language model\b",
    r"\bi(?: cannot|can't|can’t| can not|'m not able to|’m not able to| am not able to|'m unable to| am unable to)\b",
    r"\bthank(?:s| you) for (?:sharing|your|reaching|the|this|contacting|bringing|providing|letting|writing)\b",
    r"\bi hope (?:this|that) helps\b",
    r"\blet me know\b",
    r"\bfeel free to\b",
    r"\bis there anything else\b",
    r"\bhow (?:can|may) i (?:help|assist)\b",
    r"\bi(?:'d|’d| would) be (?:happy|glad) to\b",
    r"\bi understand (?:your|that you|how you)\b",
    r"\bplease (?:let me|provide|clarify|contact us)\b",
    r"\byou (?:should|could|can|may want to|might want to|need to|must|will need to|might consider)\b",
    r"\b(?:i|we) (?:would |'d |’d )?(?:recommend|suggest|advise)\b",
)]
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)
# The chat template / system prompt echoed back (checked first: "You are a helpful..." is not advice).
_TEMPLATE_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"<\|?im_(?:start|end)\|?>|<\|endoftext\|>|<\|assistant\|>|<\|user\|>|<\|system\|>",
    r"(?:^|\n)\s*(?:system|user|assistant|human|instruction|input|text|article|passage)\s*:",
    r"\byou are (?:a|an) (?:helpful|ai|smart|useful|expert)\b",
)]
# The instruction echoed back.
_PROMPT_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"\b(?:summari[sz]e|summary of) (?:the|this) (?:following|text|article|review|message|post|passage|ticket|input)\b",
    r"\bin (?:one|two|one or two|1|2|1-2|1–2|1 or 2|a few|a single|at most \w+) (?:short )?sentences?\b",
    r"\bwrite (?:a|an) (?:short |brief |concise |one-sentence |two-sentence )?summary\b",
    r"\bdo not (?:add|invent|include)\b",
)]
_CHAR_RUN = re.compile(r"(\S)\1{9,}")


def normalized(text: str) -> str:
    """Lower-cased, curly apostrophes straightened, whitespace collapsed: how phrases are looked up in a source."""
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def _repetitive(summary: str) -> bool:
    if _CHAR_RUN.search(summary):
        return True
    sentences = [normalized(s).strip(" .!?") for s in split_sentences(summary)]
    sentences = [s for s in sentences if len(s.split()) >= 3]
    if len(sentences) != len(set(sentences)):
        return True
    toks = [t.lower() for t, _, _ in word_tokens(summary)]
    for i in range(len(toks) - 3):
        if toks[i] == toks[i + 1] == toks[i + 2] == toks[i + 3]:
            return True
    for n in range(2, 9):
        counts: dict[tuple[str, ...], int] = {}
        for i in range(len(toks) - n + 1):
            gram = tuple(toks[i : i + n])
            counts[gram] = counts.get(gram, 0) + 1
        if not counts:
            break
        top = max(counts.values())
        if (n >= 3 and top >= 3) or (n >= 5 and top >= 2) or (n == 2 and top >= 4):
            return True
    return len(toks) >= 20 and len(set(toks)) / len(toks) < 0.35


def detect_degenerate(source: str, summary: str) -> str | None:
    """Why ``summary`` is not a usable summary of ``source``, or None.

    Checked in order: "empty" (no letters/digits), "answer_not_summary" (chat reply:
    apologies, "As an AI", "Sure! Here...", thanks, advice in the second person, questions
    back — each only when the phrase is not in the source), "copy_of_prompt" (chat template,
    the instruction, or the whole source echoed back), "repetition" (a repeated
    sentence, an n-gram looping, a token or character run), "too_long" (longer than the source).
    """
    text = (summary or "").strip()
    if not re.search(r"[A-Za-z0-9]", text):
        return "empty"
    src = normalized(source or "")
    low = normalized(text)
    for pattern in _TEMPLATE_PATTERNS:
        m = pattern.search(text)
        if m and normalized(m.group()) not in src:
            return "copy_of_prompt"
    for pattern in _ANSWER_PATTERNS:
        m = pattern.search(text)
        if m and normalized(m.group()) not in src:
            return "answer_not_summary"
    if _SECOND_PERSON.search(text) and not _SECOND_PERSON.search(source or ""):
        return "answer_not_summary"
    for sentence in split_sentences(text):
        if sentence.endswith("?") and normalized(sentence) not in src:
            return "answer_not_summary"
    for pattern in _PROMPT_PATTERNS:
        m = pattern.search(text)
        if m and normalized(m.group()) not in src:
            return "copy_of_prompt"
    if len(low) >= 80 and low in src and len(low) >= 0.8 * len(src):
        return "copy_of_prompt"
    if _repetitive(text):
        return "repetition"
    if source and len(text) > len(source.strip()):
        return "too_long"
    return None
