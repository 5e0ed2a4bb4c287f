"""Zero-shot and retrieval metrics checked by hand, evaluate_model / evaluate_run end to end, converters, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch
from PIL import Image
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import read_evalset, write_evalset
from tierclip.train import eval_metrics as em
from tierclip.train.evaluate import evaluate_model, evaluate_run, load_run_model, main_metrics

# A tiny open_clip model (ViT 32 px, patch 8, 2 layers; the 49,408-token embedding keeps the stock tokenizer).
TINY_CONFIG = {"embed_dim": 32,
               "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
          "purple": (140, 30, 160), "orange": (240, 140, 20)}


# ---- metric functions on given embeddings ------------------------------------------------------------


def test_topk_accuracy_by_hand():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    labels = torch.tensor([0, 1, 1, 0])  # rows 0, 1 right; row 2 second; row 3 third
    assert em.topk_accuracy(logits, labels, 1) == pytest.approx(0.5)
    assert em.topk_accuracy(logits, labels, 2) == pytest.approx(0.75)
    assert em.topk_accuracy(logits, labels, 3) == pytest.approx(1.0)
    assert em.zeroshot_chance(8, 1) == pytest.approx(0.125) and em.zeroshot_chance(10, 5) == pytest.approx(0.5)


def test_recall_at_k_by_hand_one_and_several_positives():
    # 3 texts x 4 images; text 0 -> image 0 (rank 1), text 1 -> image 1 (rank 3), text 2 -> images 2 or 3 (rank 2)
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.0], [0.8, 0.15, 0.7, 0.0], [0.85, 0.0, 0.1, 0.5]])
    positives = em.positive_pairs(image_ids=[0, 1, 2, 3], text_ids=[0, 1, 2, 2], n_images=4, n_texts=3)
    assert positives.tolist() == [[True, False, False, False], [False, True, False, False], [False, False, True, True]]
    assert em.recall_at_k(scores, positives, 1) == pytest.approx(1 / 3)
    assert em.recall_at_k(scores, positives, 2) == pytest.approx(2 / 3)
    assert em.recall_at_k(scores, positives, 3) == pytest.approx(1.0)
    # image -> text: images 0, 1, 3 find their caption first; image 2's caption ranks third
    assert em.recall_at_k(scores.T, positives.T, 1) == pytest.approx(3 / 4)
    assert em.recall_at_k(scores.T, positives.T, 2) == pytest.approx(3 / 4)
    assert em.recall_at_k(scores.T, positives.T, 3) == pytest.approx(1.0)


def test_recall_chance_exact():
    one_positive = torch.eye(4, dtype=torch.bool)
    assert em.recall_chance(one_positive, 1) == pytest.approx(1 / 4)
    assert em.recall_chance(one_positive, 3) == pytest.approx(3 / 4)
    two_of_four = torch.tensor([[True, True, False, False]])
    assert em.recall_chance(two_of_four, 1) == pytest.approx(0.5)
    assert em.recall_chance(two_of_four, 2) == pytest.approx(1 - (2 / 4) * (1 / 3))  # 1 - C(2,2)/C(4,2) = 5/6


# ---- a fake model whose embeddings are chosen by hand ------------------------------------------------


class LookupModel(torch.nn.Module):
    """encode_image/encode_text return rows of fixed tables: image i is a gray PNG of value 10*(i+1)."""

    def __init__(self, image_table, text_table):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.image_table, self.text_table = torch.tensor(image_table), torch.tensor(text_table)

    def encode_image(self, images, normalize=False):
        rows = self.image_table[images.long().view(-1) // 10 - 1]
        return torch.nn.functional.normalize(rows, dim=-1) if normalize else rows

    def encode_text(self, tokens, normalize=False):
        rows = self.text_table[tokens.view(-1)]
        return torch.nn.functional.normalize(rows, dim=-1) if normalize else rows


def gray_preprocess(image):
    return torch.tensor([image.convert("RGB").getpixel((0, 0))[0]])


def lookup_tokenizer(vocabulary):
    return lambda texts: torch.tensor([vocabulary.index(t) for t in texts])


def write_gray_evalset(root: Path, labels, captions, tasks) -> None:
    (root / "images").mkdir(parents=True)
    for i in range(len(labels)):
        Image.new("L", (8, 8), 10 * (i + 1)).save(root / f"images/{i}.png")
    samples = pl.DataFrame({"file": [f"images/{i}.png" for i in range(len(labels))], "caption": captions, "label": labels},
                           schema={"file": pl.String, "caption": pl.String, "label": pl.String})
    write_evalset(root, "hand", tasks, samples)


def test_evaluate_model_hand_checked(tmp_path):
    images = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.3, 0, 0.95, 0]]
    # zero-shot: class a = mean of e0 and (e0+e1)/sqrt2 (renormalised), b = e1, c = e2; image 3 ("a") looks like c
    prompts = ["a", "photo a", "b", "photo b", "c", "photo c"]
    prompt_vectors = [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    # retrieval (cosines): t0 -> image 0 (1.0); t1 -> image 0 (.8) before its image 1 (.6); t2 -> image 2 (1.0);
    # t3 -> image 3 (.785) before image 0 (.70): t2i@1 = 3/4. Image 3 finds t2 (.954) before t3 (.785): i2t@1 = 3/4
    captions = ["t0", "t1", "t2", "t3"]
    caption_vectors = [[1, 0, 0, 0], [0.8, 0.6, 0, 0], [0, 0, 1, 0], [0.7, 0, 0.6, 0.38]]
    model = LookupModel(images, prompt_vectors + caption_vectors)
    tasks = [{"name": "letter", "kind": "zeroshot", "label_column": "label", "classnames": ["a", "b", "c"],
              "templates": ["{}", "photo {}"]},
             {"name": "pairs", "kind": "retrieval", "caption_column": "caption"}]
    write_gray_evalset(tmp_path / "eval", ["a", "b", "c", "a"], captions, tasks)
    model.train()
    rows = evaluate_model(model, gray_preprocess, lookup_tokenizer(prompts + captions), tmp_path / "eval", batch_size=3)
    assert model.training  # mode restored
    values = {(r["task"], r["metric"]): (r["value"], r["random_score"], r["n"]) for r in rows}
    assert values == {("letter", "top1"): (pytest.approx(0.75), pytest.approx(1 / 3), 4),  # 3 classes: no top5
                      # distinct captions: both conventions agree; k=5,10 >= 4 candidates: left out
                      ("pairs", "image_retrieval_recall@1"): (pytest.approx(0.75), pytest.approx(0.25), 4),
                      ("pairs", "text_retrieval_recall@1"): (pytest.approx(0.75), pytest.approx(0.25), 4),
                      ("pairs", "t2i_recall_merged@1"): (pytest.approx(0.75), pytest.approx(0.25), 4),
                      ("pairs", "i2t_recall_merged@1"): (pytest.approx(0.75), pytest.approx(0.25), 4)}
    assert {r["evalset"] for r in rows} == {"hand"}


def test_retrieval_merges_repeated_captions_and_images(tmp_path):
    # images 0, 1 share the caption "x"; image 2 appears twice (captions "y" and "z")
    model = LookupModel([[1, 0], [0.9, 0.1], [0, 1]], [[1, 0], [0, 1], [0.1, 1]])
    root = tmp_path / "eval"
    write_gray_evalset(root, [None] * 3, ["x", "x", "y"], [{"name": "r", "kind": "retrieval", "caption_column": "caption"}])
    samples = pl.read_parquet(root / "samples.parquet")
    extra = pl.DataFrame({"file": ["images/2.png"], "caption": ["z"], "label": [None]}, schema=samples.schema)
    write_evalset(root, "hand", [{"name": "r", "kind": "retrieval", "caption_column": "caption"}], pl.concat([samples, extra]))
    rows = evaluate_model(model, gray_preprocess, lookup_tokenizer(["x", "y", "z"]), root)
    values = {r["metric"]: (r["value"], r["random_score"], r["n"]) for r in rows}
    # 3 distinct texts x 3 distinct images; text "x" has 2 positives: chance of a hit at k=1 is 2/3
    assert values["t2i_recall_merged@1"] == (pytest.approx(1.0), pytest.approx((2 / 3 + 1 / 3 + 1 / 3) / 3), 3)
    assert values["i2t_recall_merged@1"][0] == pytest.approx(1.0) and values["i2t_recall_merged@1"][2] == 3
    # clip_benchmark's convention: 4 caption rows; the "x" row of image 1 ranks image 0 first (0.994 < 1.0): a miss
    assert values["image_retrieval_recall@1"] == (pytest.approx(0.75), pytest.approx(1 / 3), 4)
    assert values["text_retrieval_recall@1"][2] == 3


def test_label_outside_classnames_is_a_user_error(tmp_path):
    model = LookupModel([[1.0, 0.0]] * 2, [[1.0, 0.0], [0.0, 1.0]])
    tasks = [{"name": "t", "kind": "zeroshot", "label_column": "label", "classnames": ["a", "b"], "templates": ["{}"]}]
    write_gray_evalset(tmp_path / "eval", ["a", "zebra"], [None, None], tasks)
    with pytest.raises(UserError, match=r"samples.parquet: row 1: label 'zebra'"):
        evaluate_model(model, gray_preprocess, lookup_tokenizer(["a", "b"]), tmp_path / "eval")


def test_unreadable_image_is_a_user_error(tmp_path):
    tasks = [{"name": "t", "kind": "zeroshot", "label_column": "label", "classnames": ["a", "b"], "templates": ["{}"]}]
    write_gray_evalset(tmp_path / "eval", ["a", "b"], [None, None], tasks)
    (tmp_path / "eval/images/1.png").write_bytes(b"not a png")
    model = LookupModel([[1.0, 0.0]] * 2, [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(UserError, match=r"row 1: cannot read image 'images/1.png'"):
        evaluate_model(model, gray_preprocess, lookup_tokenizer(["a", "b"]), tmp_path / "eval")


def test_eval_dir_without_evalset_json_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no evalset.json"):
        evaluate_model(LookupModel([[1.0]], [[1.0]]), gray_preprocess, lookup_tokenizer([]), tmp_path)


# ---- a real (tiny, random) open_clip model ---------------------------------------------------------


def write_color_evalset(root: Path) -> None:
    """12 images of 6 colours (2 each, slightly different shades); captions repeat per colour."""
    (root / "images").mkdir(parents=True)
    files, labels = [], []
    for i in range(12):
        name = list(COLORS)[i % 6]
        Image.new("RGB", (32, 32), tuple(max(0, c - 20 * (i // 6)) for c in COLORS[name])).save(root / f"images/{i}.png")
        files.append(f"images/{i}.png")
        labels.append(name)
    samples = pl.DataFrame({"file": files, "caption": [f"a photo of a {n} shape" for n in labels], "color": labels})
    tasks = [{"name": "color", "kind": "zeroshot", "label_column": "color", "classnames": list(COLORS),
              "templates": ["a photo of a {} shape.", "a {} thing."]},
             {"name": "retrieval", "kind": "retrieval", "caption_column": "caption"}]
    write_evalset(root, "colors", tasks, samples)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    (folder / "evaltest-vit.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / "evaltest-vit.json")
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("evaltest-vit")
    return model, preprocess, open_clip.get_tokenizer("evaltest-vit")


def test_evaluate_model_tiny_open_clip(tmp_path, tiny_model):
    model, preprocess, tokenizer = tiny_model
    write_color_evalset(tmp_path / "eval")
    rows = evaluate_model(model, preprocess, tokenizer, tmp_path / "eval", batch_size=5)
    by_key = {(r["task"], r["metric"]): r for r in rows}
    retrieval = {f"{name}@{k}" for name in ("image_retrieval_recall", "text_retrieval_recall", "t2i_recall_merged")
                 for k in (1, 5, 10)} | {"i2t_recall_merged@1", "i2t_recall_merged@5"}  # 6 distinct captions: no k=10
    assert set(by_key) == {("color", "top1"), ("color", "top5")} | {("retrieval", metric) for metric in retrieval}
    for row in rows:
        zeroshot = {"majority_score"} if row["task"] == "color" else set()
        assert set(row) == {"task", "metric", "value", "random_score", "evalset", "n"} | zeroshot
        assert 0.0 <= row["value"] <= 1.0 and 0.0 < row["random_score"] <= 1.0
    assert by_key["color", "top1"]["random_score"] == pytest.approx(1 / 6)
    assert by_key["color", "top5"]["random_score"] == pytest.approx(5 / 6)
    # merged: 6 distinct captions, 12 images: each caption has 2 positive images, each image one caption
    assert by_key["retrieval", "t2i_recall_merged@1"]["random_score"] == pytest.approx(2 / 12)
    assert by_key["retrieval", "i2t_recall_merged@1"]["random_score"] == pytest.approx(1 / 6)
    assert by_key["retrieval", "t2i_recall_merged@1"]["n"] == 6 and by_key["retrieval", "i2t_recall_merged@1"]["n"] == 12
    # clip_benchmark: 12 caption rows, each with its own image
    assert by_key["retrieval", "image_retrieval_recall@1"]["random_score"] == pytest.approx(1 / 12)
    assert by_key["retrieval", "image_retrieval_recall@1"]["n"] == 12 and by_key["retrieval", "text_retrieval_recall@1"]["n"] == 12
    assert by_key["color", "top1"]["value"] <= by_key["color", "top5"]["value"]
    assert main_metrics(rows)["color/top1"] == by_key["color", "top1"]["value"]
    assert len(main_metrics(rows)) == len(rows)


def make_fake_run(run: Path, model, name: str) -> None:
    (run / "model_configs").mkdir(parents=True)
    (run / "model_configs" / f"{name}.json").write_text(json.dumps(TINY_CONFIG))
    (run / "config.json").write_text(json.dumps({"model": name, "method": "clip"}))
    torch.save({"state_dict": model.state_dict()}, run / "checkpoint.pt")


def test_evaluate_run_loads_checkpoint_and_writes_eval_jsonl(tmp_path, tiny_model):
    model, preprocess, tokenizer = tiny_model
    write_color_evalset(tmp_path / "eval")
    run = tmp_path / "run"
    name = f"evaltest-run-{tmp_path.name}"  # a name only the run's own model_configs/ defines
    make_fake_run(run, model, name)
    loaded, _, _ = load_run_model(run, "cpu")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    rows = evaluate_run(run, [tmp_path / "eval"], device="cpu")
    written = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert written == rows
    expected = evaluate_model(model, preprocess, tokenizer, tmp_path / "eval")
    assert [(r["task"], r["metric"]) for r in rows] == [(r["task"], r["metric"]) for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert math.isclose(got["value"], want["value"], abs_tol=1e-6)


def test_evaluate_run_bad_inputs(tmp_path, tiny_model):
    model = tiny_model[0]
    write_color_evalset(tmp_path / "eval")
    run = tmp_path / "run"
    make_fake_run(run, model, "evaltest-vit")
    (run / "checkpoint.pt").unlink()
    with pytest.raises(UserError, match="checkpoint.pt: no such checkpoint"):
        evaluate_run(run, [tmp_path / "eval"], device="cpu")
    with pytest.raises(UserError, match="no evalset.json"):
        evaluate_run(run, [tmp_path / "run"], device="cpu")
    with pytest.raises(UserError, match="not a run folder"):
        evaluate_run(tmp_path / "eval", [tmp_path / "eval"], device="cpu")
    with pytest.raises(UserError, match="task name 'color' is also used"):
        evaluate_run(run, [tmp_path / "eval", tmp_path / "eval"], device="cpu")
    (run / "config.json").write_text(json.dumps({"model": "no-such-model"}))
    torch.save({"state_dict": model.state_dict()}, run / "checkpoint.pt")
    with pytest.raises(UserError, match="config.json: model no-such-model: unknown open_clip model"):
        evaluate_run(run, [tmp_path / "eval"], device="cpu")
    assert not (run / "eval.jsonl").exists()


def test_train_eval_cli_prints_table(tmp_path, tiny_model):
    from tierclip.train.cli import app
    from typer.testing import CliRunner

    write_color_evalset(tmp_path / "eval")
    make_fake_run(tmp_path / "run", tiny_model[0], "evaltest-vit")
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--eval", str(tmp_path / "eval"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "image_retrieval_recall@10" in result.output and "t2i_recall_merged@10" in result.output and "random" in result.output
    assert len((tmp_path / "run/eval.jsonl").read_text().splitlines()) == 13


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_eval_keeps_what_earlier_evaluations_wrote(tmp_path, tiny_model):
    """`train eval RUN --eval B` after `--eval A`: eval.jsonl keeps A's rows beside B's, results.json's metrics
    are rebuilt from the merged rows (the two files agree), a re-evaluated task replaces its rows."""
    from tierclip.train.cli import app
    from typer.testing import CliRunner

    write_color_evalset(tmp_path / "colors")
    letters = [{"name": "letter", "kind": "zeroshot", "label_column": "label", "classnames": ["a", "b", "c"], "templates": ["{}"]}]
    write_gray_evalset(tmp_path / "letters", ["a", "b", "c", "a"], [None] * 4, letters)
    run = tmp_path / "run"
    make_fake_run(run, tiny_model[0], "evaltest-vit")
    (run / "results.json").write_text(json.dumps({"method": "clip", "samples_seen": 10, "metrics": {}}))
    first = evaluate_run(run, [tmp_path / "colors"], device="cpu")
    assert len(first) == 13 and _lines(run / "eval.jsonl") == first
    result = CliRunner().invoke(app, ["eval", str(run), "--eval", str(tmp_path / "letters"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = _lines(run / "eval.jsonl")
    assert [r for r in rows if r["evalset"] == "colors"] == first  # kept, unchanged
    assert [(r["evalset"], r["task"], r["metric"]) for r in rows if r["evalset"] == "hand"] == [("hand", "letter", "top1")]
    letter = next(r for r in rows if r["task"] == "letter")
    assert letter["majority_score"] == pytest.approx(0.5)  # "a" is 2 of 4 images
    results = json.loads((run / "results.json").read_text())
    assert results["metrics"] == main_metrics(rows) and len(results["metrics"]) == 14 and results["samples_seen"] == 10
    assert "colors" in result.output and "letter" in result.output  # every row eval.jsonl holds is printed
    # evaluating colors again replaces its rows (no duplicates), letters stay
    again = evaluate_run(run, [tmp_path / "colors"], device="cpu")
    assert len(again) == 14 and [(r["evalset"], r["task"]) for r in again].count(("colors", "color")) == 2  # top1, top5
    assert _lines(run / "eval.jsonl") == again and json.loads((run / "results.json").read_text())["metrics"] == main_metrics(again)


def test_train_eval_refuses_a_task_name_from_another_eval_set_and_a_bad_eval_jsonl(tmp_path, tiny_model):
    write_color_evalset(tmp_path / "colors")
    clash = [{"name": "color", "kind": "zeroshot", "label_column": "label", "classnames": ["a", "b"], "templates": ["{}"]}]
    write_gray_evalset(tmp_path / "other", ["a", "b"], [None, None], clash)  # eval set "hand", task "color" again
    run = tmp_path / "run"
    make_fake_run(run, tiny_model[0], "evaltest-vit")
    evaluate_run(run, [tmp_path / "colors"], device="cpu")
    before = (run / "eval.jsonl").read_bytes()
    with pytest.raises(UserError, match="task 'color' is already there from eval set 'colors'"):
        evaluate_run(run, [tmp_path / "other"], device="cpu")
    assert (run / "eval.jsonl").read_bytes() == before
    (run / "eval.jsonl").write_bytes(before + b"{not json\n")
    with pytest.raises(UserError, match="eval.jsonl: line 14 is not an eval row"):
        evaluate_run(run, [tmp_path / "colors"], device="cpu")


def test_merge_eval_rows_newest_wins_per_eval_set_and_task():
    from tierclip.train.evaluate import merge_eval_rows

    old = [{"evalset": "a", "task": "t", "metric": "top1", "value": 0.1}, {"evalset": "a", "task": "t", "metric": "top5", "value": 0.5},
           {"evalset": "b", "task": "u", "metric": "top1", "value": 0.2}, {"task": "v", "metric": "top1", "value": 0.3}]
    new = [{"evalset": "a", "task": "t", "metric": "top1", "value": 0.9}, {"evalset": "c", "task": "v", "metric": "top1", "value": 0.4}]
    assert merge_eval_rows(old, new) == [old[2]] + new  # a/t replaced whole (its top5 too), v's unnamed old row replaced


# ---- folder-of-classes conversion --------------------------------------------------------------------


def make_class_folders(source: Path) -> None:
    for folder, color in (("n01_red_thing", "red"), ("green_thing", "green"), ("blue", "blue")):
        (source / folder).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (12, 12), COLORS[color]).save(source / folder / f"{i}.{'png' if i else 'jpg'}")
    (source / "blue" / "broken.png").write_bytes(b"\x89PNG not really")
    (source / "blue" / "notes.txt").write_text("not an image")
    (source / "classnames.txt").write_text("n01_red_thing\tred thing\n# a comment\n\n")


def test_convert_folder(tmp_path):
    from tierclip.train.eval_convert import convert_folder

    make_class_folders(tmp_path / "src")
    (tmp_path / "src" / "templates.txt").write_text("a photo of a {}.\nan image of the {}\n")
    report = convert_folder(tmp_path / "src", tmp_path / "out", name="things")
    assert (report.n_images, report.n_classes) == (6, 3)
    assert report.skipped == {"not_an_image_file": 1, "unreadable_image": 1}
    evalset = read_evalset(tmp_path / "out")
    (task,) = evalset.tasks
    assert task["name"] == "things" and task["kind"] == "zeroshot"
    assert task["classnames"] == ["blue", "green thing", "red thing"]  # sorted folders; classnames.txt mapping; _ -> space
    assert task["templates"] == ["a photo of a {}.", "an image of the {}"]
    assert sorted(evalset.samples["label"].to_list()) == ["blue"] * 2 + ["green thing"] * 2 + ["red thing"] * 2
    assert all(evalset.image_path(f).is_file() for f in evalset.samples["file"])
    assert evalset.samples["caption"].null_count() == 6


def test_convert_folder_bad_inputs(tmp_path):
    from tierclip.train.eval_convert import convert_folder

    with pytest.raises(UserError, match="one sub-folder of images per class"):
        convert_folder(tmp_path / "missing", tmp_path / "out")
    make_class_folders(tmp_path / "src")
    (tmp_path / "src" / "classnames.txt").write_text("blue\tblue\nred thing without tab\n")
    with pytest.raises(UserError, match=r"classnames.txt: line 2: expected FOLDER<TAB>readable name"):
        convert_folder(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "classnames.txt").write_text("blue\tblue\n")
    (tmp_path / "bad_templates.txt").write_text("a photo of a {}.\na photo\n")
    with pytest.raises(UserError, match=r"bad_templates.txt: line 2: a template needs exactly one \{\}"):
        convert_folder(tmp_path / "src", tmp_path / "out", templates_path=tmp_path / "bad_templates.txt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(UserError, match="not empty"):
        convert_folder(tmp_path / "src", tmp_path / "out")


def test_make_evalset_cli(tmp_path):
    from tierclip.train.cli import app
    from typer.testing import CliRunner

    make_class_folders(tmp_path / "src")
    result = CliRunner().invoke(app, ["make-evalset", "folder", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "6 images, 3 classes; skipped: 1 not_an_image_file, 1 unreadable_image" in result.output
    assert read_evalset(tmp_path / "out").tasks[0]["name"] == "src"


def test_clip_benchmark_missing_package_is_a_user_error(tmp_path):
    import importlib.util

    from tierclip.train.eval_convert import convert_clip_benchmark

    if importlib.util.find_spec("clip_benchmark") is not None:
        pytest.fail("clip_benchmark is installed here: this test checks the message for users without it")
    with pytest.raises(UserError, match="pip install clip-benchmark"):
        convert_clip_benchmark("cifar10", tmp_path / "out", tmp_path / "raw")


def test_retrieval_conventions_differ_where_captions_repeat():
    """clip_benchmark 1.6.2 (metrics/zeroshot_retrieval.py), written out: every caption row is a query whose only
    positive is its own image; recall@k of a query = 1 if (number of positives among its top k) / (number of
    positives) > 0; the mean over queries is `image_retrieval_recall@k` (text -> image) and, on the transposed
    matrices, `text_retrieval_recall@k` (image -> text). Ours (`*_merged`): one query per distinct caption,
    positives = every image that caption goes with."""
    from tierclip.train.eval_metrics import retrieval_metrics

    # rows: (image 0, "a"), (image 1, "a"), (image 2, "b"); distinct captions a, b
    scores = torch.tensor([[0.9, 0.5, 0.1],   # a
                           [0.2, 0.3, 0.8]])  # b
    out = {name: (value, chance, n) for name, value, chance, n in retrieval_metrics(scores, [0, 0, 1], [0, 1, 2], (1, 2))}

    def clip_benchmark_recall(query_scores, positives, k):
        top = query_scores.topk(k, dim=1).indices
        hits = [positives[q, top[q]].sum().item() / positives[q].sum().item() > 0 for q in range(len(query_scores))]
        return sum(hits) / len(hits)

    row_scores = scores[[0, 0, 1]]
    own_image = torch.eye(3, dtype=torch.bool)
    assert out["image_retrieval_recall@1"] == (pytest.approx(clip_benchmark_recall(row_scores, own_image, 1)), pytest.approx(1 / 3), 3)
    assert out["image_retrieval_recall@1"][0] == pytest.approx(2 / 3)  # row (image 1, "a") ranks image 0 first
    assert out["image_retrieval_recall@2"][0] == pytest.approx(1.0)
    # image -> text at k=2 (k=1 ties between the two identical "a" rows)
    assert out["text_retrieval_recall@2"][0] == pytest.approx(clip_benchmark_recall(row_scores.T, own_image.T, 2)) == 1.0
    assert out["t2i_recall_merged@1"] == (pytest.approx(1.0), pytest.approx((2 / 3 + 1 / 3) / 2), 2)  # "a" has 2 positives
    assert out["i2t_recall_merged@1"] == (pytest.approx(1.0), pytest.approx(1 / 2), 3)
    assert "i2t_recall_merged@2" not in out  # 2 candidates: recall@2 is 1 by construction
