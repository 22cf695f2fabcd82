"""The toxicity recipe (pipeline/modelbuild/toxicity.py): hash check before unpickling, ONNX == scikit-learn.

A tiny vectorizer + calibrated LinearSVC trained here stands in for the package's model in
most tests (same classes, same conversion path, milliseconds to build); one test converts the
real alt-profanity-check files and checks the agreement on a fixed sample.
"""

from __future__ import annotations

import json
import shutil

import joblib
import pytest

from pipeline.catalogue import load_catalogue
from pipeline.inference.toxicity import ToxicityClassifier
from pipeline.modelbuild import toxicity as recipe
from pipeline.modelbuild.base import ModelBuildError, sha256_file

CLEAN = ["a lovely film with a warm heart", "great acting and a clever plot", "the soundtrack is wonderful",
         "a quiet, moving story", "i enjoyed every minute of it", "charming and funny throughout",
         "the director knows his craft", "a fine cast in a gentle comedy"]
OFFENSIVE = ["you stupid idiot", "what a damn moron", "shut up you idiot", "this crap is for morons",
             "stupid damn crap", "idiot moron fool", "you are a stupid fool", "damn idiots everywhere"]
#: A fixed sample for agreement: the training texts, unseen texts, casing and accents.
SAMPLE = CLEAN + OFFENSIVE + ["STUPID IDIOT", "Très stupide idiot", "über moron", "", "the", "a film", "çà crap"]


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    data = tmp_path_factory.mktemp("profanity_check_data")
    vectorizer = TfidfVectorizer(stop_words="english")
    features = vectorizer.fit_transform(CLEAN + OFFENSIVE)
    classifier = CalibratedClassifierCV(LinearSVC(dual=False), method="sigmoid", cv=2)
    classifier.fit(features, [0] * len(CLEAN) + [1] * len(OFFENSIVE))
    joblib.dump(vectorizer, data / "vectorizer.joblib")
    joblib.dump(classifier, data / "model.joblib")
    return data, {name: sha256_file(data / name) for name in recipe.SOURCE_FILES}


def _build(tmp_path, data, hashes, **kwargs):
    return recipe.build_toxicity_linear(tmp_path / "toxicity", sha256=hashes, data_dir=data, snippets=SAMPLE,
                                        progress=lambda *a: None, **kwargs)


def test_build_writes_the_layout_and_agrees_with_sklearn(tmp_path, tiny_source):
    data, hashes = tiny_source
    manifest = _build(tmp_path, data, hashes)
    out = tmp_path / "toxicity"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.onnx"]
    assert manifest["source"]["files_sha256"] == hashes
    assert manifest["files"]["model.onnx"] == sha256_file(out / "model.onnx")
    agreement = manifest["agreement"]
    assert agreement["n"] >= len(SAMPLE)
    assert agreement["max_abs_diff"] < 1e-5
    assert agreement["decision_disagreements"] == 0
    assert json.loads((tmp_path / "toxicity" / "config.json").read_text())["labels"] == ["clean", "offensive"]
    # The dense tail is folded into MatMuls (fuse_linear_tail); the agreement above is with the fused graph.
    import onnx

    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert "MatMul" in ops and not ops & {"Normalizer", "LinearClassifier"}

    # The runtime reads the ONNX graph only and gives scikit-learn's decision on every sample text.
    vectorizer, classifier = joblib.load(data / "vectorizer.joblib"), joblib.load(data / "model.joblib")
    reference = recipe.sklearn_scores(vectorizer, classifier, SAMPLE)
    predictions = ToxicityClassifier.load(out).predict(SAMPLE)
    for text, prediction, p in zip(SAMPLE, predictions, reference, strict=True):
        assert prediction.offensive_probability == pytest.approx(p, abs=1e-5), text
        assert prediction.label == ("offensive" if p >= 0.5 else "clean"), text
    assert predictions[SAMPLE.index("you stupid idiot")].label == "offensive"
    assert predictions[SAMPLE.index("a lovely film with a warm heart")].label == "clean"


def test_tampered_pickle_is_refused_before_it_is_loaded(tmp_path, tiny_source, monkeypatch):
    data, hashes = tiny_source
    tampered = tmp_path / "data"
    shutil.copytree(data, tampered)
    with (tampered / "model.joblib").open("ab") as fh:
        fh.write(b"\x00")

    def must_not_load(*args, **kwargs):
        raise AssertionError("a pickle whose hash does not match must never be unpickled")

    monkeypatch.setattr(joblib, "load", must_not_load)
    with pytest.raises(ModelBuildError, match=r"model\.joblib has sha256 [0-9a-f]{64}, not the .* refusing to load"):
        _build(tmp_path, tampered, hashes)
    assert not (tmp_path / "toxicity").exists()  # nothing half-built is left behind


def test_missing_pin_and_missing_file_fail_clearly(tmp_path, tiny_source):
    data, hashes = tiny_source
    with pytest.raises(ModelBuildError, match="no sha256 pinned for model.joblib"):
        recipe.verify_sources(data, {"vectorizer.joblib": hashes["vectorizer.joblib"]})
    with pytest.raises(ModelBuildError, match="not found; reinstall alt-profanity-check"):
        recipe.verify_sources(tmp_path, hashes)


def test_the_catalogue_pins_the_installed_package_files():
    """The hashes in models/catalogue.toml are those of alt-profanity-check 1.9.1 as installed by `make install`."""
    entry = load_catalogue().get(recipe.TOXICITY_MODEL_NAME)
    assert entry.source.sha256 is not None
    assert recipe.verify_sources(recipe.locate_source(), entry.source.sha256) == entry.source.sha256


def test_real_model_onnx_agrees_with_sklearn_on_a_fixed_sample(tmp_path):
    """The package's own model, converted: scores within 1e-5 and no decision flipped (~1 s)."""
    from pipeline.modelbuild.data import load_rotten_tomatoes

    entry = load_catalogue().get(recipe.TOXICITY_MODEL_NAME)
    snippets = [e.text for e in load_rotten_tomatoes()][:300] + SAMPLE
    manifest = recipe.build_toxicity_linear(tmp_path / "real", sha256=dict(entry.source.sha256 or {}),
                                            snippets=snippets, progress=lambda *a: None)
    agreement = manifest["agreement"]
    assert agreement["n"] > 300
    assert agreement["max_abs_diff"] < 1e-5, agreement
    assert agreement["decision_disagreements"] == 0, agreement["disagreeing_texts"]
    assert agreement["offensive_by_sklearn"] > 20  # the sample crosses the decision boundary
