"""Source-constrained decoding: a generated number or capitalised name must continue one in the source.

Pure logic (numpy + str), no model and no I/O; `pipeline.inference.summarizer` calls it once per
row per decode step. The published failure it targets: a small model inventing casualty figures,
nationalities, cities, names and deadlines that appear nowhere in the story (issue 14).

A *word* is a maximal run of letters/digits. While decoding, the word a token starts or extends is
checked against an index of the source (`SourceIndex`, lowercased, so "Economy" at a sentence
start is fine when the source says "economy"):

* a word starting with a digit must be a prefix of a source digit-word ("1" "18" for "18"; the
  comma-free form of "1,200"; digit forms of source number words, "18" for "eighteen");
* a word starting with a capital must be a prefix of a source word, or of a common function word
  ("The", "This", "He", "In"...) when it stands at a sentence start; "I" and titles (Mr, Dr) pass;
* a cardinal number word ("eighteen", "million"; not "one", mostly a pronoun) must have a value
  the source states, in digits or in words;
* a token that *completes* such a word (the next character is not a letter/digit) is allowed only
  when the whole word is in the source - "Obama" is a prefix of the source's "Obamacare", but
  "Obama said" is not in it.

When the greedy token breaks a rule, the best-scoring allowed token among the top `k` is taken
instead; a newline or EOS alternative is only taken after a sentence end (never cut a sentence to
dodge a name). If none of the top `k` is allowed, the greedy token stays (counted as
`unresolved`) and the faithfulness guard judges the result as before.

Hand-written (no library does this for ONNX Runtime decoding: the HF LogitsProcessor family
needs torch, and grammar-constrained libraries such as outlines constrain to a fixed grammar,
not to per-request source spans).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TokenTable", "SourceIndex", "SourceConstraint", "token_table"]

#: Top-k searched for an allowed replacement (a replacement further down is rarely fluent).
DEFAULT_TOP_K = 50

# Sentence-initial function words and common openers. Kept here (not imported from the summary
# lane's stopword list) because inference sits below the lanes and must not import them; a word
# missing here is still allowed when the source uses it in any case.
_COMMON = frozenset("""
a about above according across after afterwards again against all almost also although always
among an and another any anyone anything are as at back be because before being below besides
both but by can could despite did do does during each either even ever every everyone everything
few for from further furthermore given had has have having he her here hers herself him himself
his how however i if in including instead into is it its itself just last later let like many may
meanwhile might more moreover most much must my neither never nevertheless no none nor not
nothing now of often on once one only or other others our ours out over overall perhaps please
rather several she should since so some someone something sometimes still such than that the
their theirs them then there therefore these they this those though through thus to today
together too under unlike until up upon us very was we well were what whatever when whenever
where whereas whether which while who whom whose why will with within without would yes yet you
your yours
""".split())
#: Titles pass anywhere: adding "Mr." to a name in the source states no new fact.
_TITLES = frozenset("mr mrs ms dr sen gov rep st mt jr sr".split())

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 10**12}
_NUMBER_WORDS = {**_UNITS, **_TENS, **_SCALES, "dozen": 12}
_UNCHECKED_NUMBER_WORDS = frozenset({"one"})  # "one of the", "no one": a pronoun far more often than a figure
_CHECKED_NUMBER_WORDS = frozenset(_NUMBER_WORDS) - _UNCHECKED_NUMBER_WORDS
_WORD_FOR = {v: w for w, v in {**_UNITS, **_TENS}.items()}

_WORD = re.compile(r"[^\W_]+")  # letters and digits, any script
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_COMPOUND = re.compile(r"\b(" + "|".join(_TENS) + r")[\s-]+(" + "|".join(list(_UNITS)[1:10]) + r")\b")
_SCALED = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r"|\d+(?:\.\d+)?)[\s-]+(hundred|thousand|million|billion|trillion)\b")
_DOUBLE_SPACE = re.compile(r"(?<=\S) {2,}(?=\S)")
_SENTENCE_END = ".!?:;\n"
_OPENERS = " \t\"'“‘(*-–—•"
_CONTEXT = 64  # chars of generated text looked at per step (enough for the word being written)


def _prefixes(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w[:i] for w in words for i in range(1, len(w) + 1))


_COMMON_PREFIXES = _prefixes(_COMMON | _TITLES)


@dataclass(frozen=True)
class TokenTable:
    """Surface text of every token id (what it adds to the decoded text), built once per tokenizer."""

    surfaces: tuple[str, ...]
    #: tokens whose text contains a newline: a stop sequence or a paragraph break, not a word choice
    newline: np.ndarray = field(repr=False)
    #: tokens that are only spaces (any kind: "\xa0" too), no newline
    blank: np.ndarray = field(repr=False)

    @classmethod
    def from_surfaces(cls, surfaces: Sequence[str]) -> TokenTable:
        return cls(tuple(surfaces), np.array(["\n" in s for s in surfaces], dtype=bool),
                   np.array([s.isspace() and "\n" not in s for s in surfaces], dtype=bool))

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TokenTable:  # tokenizers.Tokenizer
        """Decode each id after an anchor token, so a leading space survives (sentencepiece-style
        decoders drop it on a lone token; byte-level ones keep it)."""
        anchor = tokenizer.encode("a", add_special_tokens=False).ids[:1]
        base = tokenizer.decode(anchor, skip_special_tokens=True)
        n = tokenizer.get_vocab_size()
        pairs = tokenizer.decode_batch([anchor + [i] for i in range(n)], skip_special_tokens=True)
        return cls.from_surfaces([p[len(base):] if p.startswith(base) else p for p in pairs])


_TABLES: dict[int, tuple[object, TokenTable]] = {}
_TABLES_LOCK = threading.Lock()


def token_table(tokenizer) -> TokenTable:
    """The `TokenTable` of a tokenizer object, built on first use (~0.2 s for 49k ids) and cached."""
    with _TABLES_LOCK:
        hit = _TABLES.get(id(tokenizer))
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
        table = TokenTable.from_tokenizer(tokenizer)
        _TABLES[id(tokenizer)] = (tokenizer, table)  # holds the tokenizer so the id stays unique
        return table


class SourceIndex:
    """What a summary of `source` may say: its words (lowercased), digit-words and number values."""

    def __init__(self, source: str) -> None:
        low = source.lower()
        words = set(_WORD.findall(low))
        digits = {w for w in words if w[0].isnumeric()}
        values: set[float] = set()
        for m in _NUMBER.finditer(source):
            plain = m.group().rstrip(",").replace(",", "")
            digits.add(plain.split(".")[0])
            try:
                values.add(float(plain))
            except ValueError:
                pass
        for w in words:
            if w in _NUMBER_WORDS:
                values.add(float(_NUMBER_WORDS[w]))
        for m in _COMPOUND.finditer(low):
            values.add(float(_TENS[m.group(1)] + _UNITS[m.group(2)]))
        for m in _SCALED.finditer(low):
            head = m.group(1)
            base = float(_NUMBER_WORDS[head]) if head in _NUMBER_WORDS else float(head)
            values.add(base * _SCALES[m.group(2)])
        number_words: set[str] = set()
        for v in values:
            if v != int(v):
                continue
            n = int(v)
            digits.add(str(n))
            if n in _WORD_FOR:
                number_words.add(_WORD_FOR[n])
            elif 20 < n < 100:  # "twenty-one" is written as two words
                number_words.update((_WORD_FOR[n - n % 10], _WORD_FOR[n % 10]))
            for word, scale in _SCALES.items():
                if n >= scale and n % scale == 0:
                    number_words.add(word)
                    head = n // scale
                    if head in _WORD_FOR:
                        number_words.add(_WORD_FOR[head])
                        digits.add(str(head))
            if n == 12:
                number_words.add("dozen")
        number_words |= words & set(_NUMBER_WORDS)
        # Names are matched on `_name_key`: case-blind on the first letter only, so "Economy" matches the
        # source's "economy" but an all-caps run cannot be spelled out of lower-case words ("BRI" from
        # "bring" gave "BRIZONA HANGING IN THE BALANCE"); the source's own words count in lower case too.
        names = {_name_key(w) for w in _WORD.findall(source)} | words | {_name_key(w) for w in _initials(source)}
        self.words = frozenset(words | names)
        self.prefixes = _prefixes(self.words)
        self.digits = frozenset(digits)
        self.digit_prefixes = _prefixes(digits)
        self.number_words = frozenset(number_words)
        self.number_word_prefixes = _prefixes(number_words)

    def word_ok(self, word: str, complete: bool, sentence_start: bool) -> bool:
        """May `word` (the whole word if `complete`, else its beginning so far) appear in the summary?"""
        first = word[0]
        low = word.lower()
        if first.isnumeric():  # digits, and "½" "²" (a figure too, and never a source digit-word)
            return low in (self.digits if complete else self.digit_prefixes)
        if low in _CHECKED_NUMBER_WORDS:
            if low in self.number_words:
                return True
            # an unfinished "ten" may still become "tenant"; a finished one is a figure
            return not complete and (low in self.number_word_prefixes or low in self.prefixes)
        if not first.isupper():
            return True
        key = _name_key(word)
        if complete:
            return key in self.words or low in _TITLES or low == "i" or (sentence_start and key in _COMMON)
        return key in self.prefixes or low == "i" or (sentence_start and key in _COMMON_PREFIXES)


def _initials(source: str) -> set[str]:
    """'usa' for 'United States of America': acronyms of capitalised runs (2-5 words)."""
    out: set[str] = set()
    for run in re.finditer(r"[A-Z][\w'-]*(?:\s+(?:of\s+|and\s+|the\s+)*[A-Z][\w'-]*)+", source):
        caps = [w[0].lower() for w in run.group().split() if w[0].isupper()]
        for i in range(len(caps)):
            for j in range(i + 2, min(len(caps), i + 5) + 1):
                out.add("".join(caps[i:j]).upper())
    return out


def _name_key(word: str) -> str:
    return word[:1].lower() + word[1:]


def _sentence_start(before: str) -> bool:
    stripped = before.rstrip(_OPENERS)
    return not stripped or stripped[-1] in _SENTENCE_END


class SourceConstraint:
    """One row's constraint. `choose` is called once per decode step with the text generated so far."""

    def __init__(self, index: SourceIndex, table: TokenTable, *, top_k: int = DEFAULT_TOP_K,
                 eos_ids: Iterable[int] = ()) -> None:
        self.index = index
        self.table = table
        self.top_k = int(top_k)
        self._eos = frozenset(int(i) for i in eos_ids)
        self.replaced = 0     # steps where the greedy token was swapped for an allowed one
        self.unresolved = 0   # steps where no top-k token was allowed (greedy token kept)
        self.events: list[tuple[int, int, int]] = []  # (chars generated, greedy, chosen): for reading, not logic

    @classmethod
    def for_source(cls, source: str, table: TokenTable, **kw) -> SourceConstraint:
        return cls(SourceIndex(source), table, **kw)

    def allowed(self, text: str, token: int) -> bool:
        """May `token` follow the generated `text`?"""
        if token in self._eos:
            return True
        surface = self.table.surfaces[token]
        if not surface or "\ufffd" in surface:  # specials, and byte pieces of a multi-byte character
            return True
        ctx = text[-_CONTEXT:]
        joins = ctx[-1:].isalnum()  # the token continues or completes the word the text ends with
        if not joins and not any(c.isalnum() for c in surface):
            return True  # punctuation or space after a finished word: touches no word
        new = ctx + surface
        boundary = len(ctx)
        for m in _WORD.finditer(new):
            if m.end() < boundary or (m.end() == boundary and not joins):
                continue  # settled before this token
            # a word ending exactly at the boundary is completed by this token's first character
            complete = m.end() < len(new)
            if not self.index.word_ok(m.group(), complete, _sentence_start(new[: m.start()])):
                return False
        return True

    def choose(self, text: str, logits: np.ndarray, greedy: int) -> int:
        """`greedy` if allowed, else the best allowed token among the top k, else `greedy`."""
        if self.allowed(text, greedy):
            return greedy
        k = min(self.top_k, logits.shape[-1])
        top = np.argpartition(logits, -k)[-k:]
        top = top[np.argsort(logits[top])[::-1]]
        sentence_done = text.rstrip()[-1:] in (".", "!", "?")
        starts_number = self._starts_number(text, greedy)
        # This tokenizer writes " 18" as " ", "1", "8": a refused digit follows a bare space, and the only
        # fluent way on is a word with its own space (the double space is collapsed in the output);
        # a piece without one glues onto nothing ("in the " + "ump" + "ire").
        after_space = text[-1:].isspace() and text[-1:] != "\n"
        second_best = None
        for tok in top.tolist():
            if tok == greedy or self.table.blank[tok] or "\ufffd" in self.table.surfaces[tok]:
                # a bare space dodges the rule for one step and teaches the model double spaces; a byte
                # piece of a multi-byte character dodged it into "ŨS Senate"
                continue
            if not sentence_done and (tok in self._eos or self.table.newline[tok]):
                continue
            if not self.allowed(text, tok):
                continue
            # Second choice only: another figure in place of a refused one is likely a figure of something
            # else ("killing 12" for the source's 12 workers).
            if (starts_number and self._starts_number(text, tok)) or (after_space and not self.table.surfaces[tok][:1].isspace()):
                second_best = tok if second_best is None else second_best
                continue
            return self._replace(text, greedy, int(tok))
        if second_best is not None:
            return self._replace(text, greedy, int(second_best))
        self.unresolved += 1
        self.events.append((len(text), greedy, greedy))
        return greedy

    def tidy(self, text: str) -> str:
        """The finished text: a double space a replacement left after a refused digit becomes one."""
        return _DOUBLE_SPACE.sub(" ", text) if self.replaced else text

    def _replace(self, text: str, greedy: int, tok: int) -> int:
        self.replaced += 1
        self.events.append((len(text), greedy, tok))
        return tok

    def _starts_number(self, text: str, token: int) -> bool:
        """Does `token` begin a new figure (a digit or a number word not continuing a word)?"""
        if text[-1:].isalnum():
            return False
        body = self.table.surfaces[token].lstrip()
        if body[:1].isnumeric():
            return True
        m = _WORD.match(body)
        return m is not None and m.group().lower() in _CHECKED_NUMBER_WORDS
