"""The out-of-domain sentiment sets: tweets, product-review sentences and newspaper editorial sentences.

Why these: the default model is trained on movie-review snippets, and robustness off movie reviews
is what the distilled students are for (issue 15). The texts are the human-rated sentences that
VADER's authors published with their paper (Hutto & Gilbert, ICWSM 2014), shipped inside the
vaderSentiment 3.3.2 *sdist* (additional_resources/hutto_ICWSM_2014.tar.gz; the wheel lacks it).
Every sentence carries the mean of at least 20 raters' scores on -4..+4.

Two files are committed under pipeline/modelbuild/distill_data/ (README.md there has the provenance
and licence); this module made them once, before any training, and reads them:

* ``ood_sentiment.jsonl``: the labelled evaluation set. A sentence is labelled positive when its
  mean rating is >= +1, negative when <= -1 (weaker ones are left out: a binary classifier has no
  neutral answer); 500 of each label from each domain (tweets, Amazon review sentences, New York
  Times editorial sentences), 3,000 in all. The movie-review sentences of the same archive are
  not used (in-domain).
* ``ood_unlabelled.jsonl``: 1,000 other sentences of each domain, any rating, no label: the text
  the teacher's soft labels are computed on besides the training reviews. Disjoint from the
  labelled set by construction (and checked).

Regenerate (the output must not change): ``python -m pipeline.modelbuild.ood --sdist vaderSentiment-3.3.2.tar.gz``
after ``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.modelbuild.base import ModelBuildError, sha256_file

DATA_DIR = Path(__file__).resolve().parent / "distill_data"
OOD_LABELLED = DATA_DIR / "ood_sentiment.jsonl"
OOD_UNLABELLED = DATA_DIR / "ood_unlabelled.jsonl"

SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
#: domain -> ground-truth file inside the archive (tab separated: id, mean rating, text)
DOMAINS = {
    "tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
    "amazon_reviews": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
}
THRESHOLD = 1.0
PER_LABEL_PER_DOMAIN = 500
UNLABELLED_PER_DOMAIN = 1000
SEED = 13


@dataclass(frozen=True)
class Rated:
    domain: str
    id: str
    rating: float
    text: str


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # two tweets carry Windows-1252 quotes


def read_ground_truth(sdist: Path) -> list[Rated]:
    """Every rated sentence of the three non-movie domains, from the vaderSentiment sdist (hash-checked)."""
    digest = sha256_file(sdist)
    if digest != SDIST_SHA256:
        raise ModelBuildError(f"{sdist} has sha256 {digest}, not that of {SDIST} ({SDIST_SHA256})")
    with tarfile.open(sdist) as outer:
        member = outer.extractfile(ARCHIVE)
        if member is None:
            raise ModelBuildError(f"{sdist} has no {ARCHIVE}")
        inner_bytes = member.read()
    rows: list[Rated] = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for domain, name in DOMAINS.items():
            fh = inner.extractfile(name)
            if fh is None:
                raise ModelBuildError(f"{ARCHIVE} has no {name}")
            for line in fh.read().splitlines():
                parts = _decode(line).lstrip("\ufeff").split("\t")
                if len(parts) < 3:
                    continue
                text = " ".join(html.unescape("\t".join(parts[2:])).split())  # tweets carry &amp; etc.
                if text:
                    rows.append(Rated(domain, parts[0].strip(), float(parts[1]), text))
    return rows


def select(rows: list[Rated]) -> tuple[list[dict], list[dict]]:
    """(labelled, unlabelled) rows, seeded; a text that occurs twice in the archive is used at most once."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    unique: list[Rated] = []
    for r in rows:
        if r.text not in seen:
            seen.add(r.text)
            unique.append(r)
    labelled: list[dict] = []
    unlabelled: list[dict] = []
    for domain in DOMAINS:
        mine = [r for r in unique if r.domain == domain]
        taken: set[str] = set()
        for label, keep in (("positive", lambda x: x >= THRESHOLD), ("negative", lambda x: x <= -THRESHOLD)):
            pool = [r for r in mine if keep(r.rating)]
            rng.shuffle(pool)
            if len(pool) < PER_LABEL_PER_DOMAIN:
                raise ModelBuildError(f"{domain}: only {len(pool)} {label} sentences")
            for r in pool[:PER_LABEL_PER_DOMAIN]:
                taken.add(r.text)
                labelled.append({"text": r.text, "label": label, "domain": domain, "id": r.id, "rating": r.rating})
        rest = [r for r in mine if r.text not in taken]
        rng.shuffle(rest)
        unlabelled.extend({"text": r.text, "domain": domain, "id": r.id} for r in rest[:UNLABELLED_PER_DOMAIN])
    rng.shuffle(labelled)  # so that `--limit N` takes every domain and label, not the first domain's positives
    return labelled, unlabelled


@dataclass(frozen=True)
class OodSet:
    texts: list[str]
    labels: list[str]
    domains: list[str]
    sha256: str


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise ModelBuildError(f"{path} is missing; it is committed with the repository (git checkout it)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_ood_set(path: Path = OOD_LABELLED) -> OodSet:
    rows = _read_jsonl(path)
    return OodSet([r["text"] for r in rows], [r["label"] for r in rows], [r["domain"] for r in rows],
                  sha256_file(path))


def load_ood_unlabelled(path: Path = OOD_UNLABELLED) -> list[str]:
    return [r["text"] for r in _read_jsonl(path)]


def text_key(text: str) -> str:
    """The key a soft label is stored under: 16 hex digits of the text's sha256 (no text in the file)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, required=True, help=f"path to {SDIST}")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    labelled, unlabelled = select(read_ground_truth(args.sdist))
    assert not {r["text"] for r in labelled} & {r["text"] for r in unlabelled}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(args.out_dir / OOD_LABELLED.name, labelled)
    _write_jsonl(args.out_dir / OOD_UNLABELLED.name, unlabelled)
    print(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled -> {args.out_dir}")


if __name__ == "__main__":
    main()
