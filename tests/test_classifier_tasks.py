"""Readers of the classification tasks on fixture slices of the real files, header detection, bad rows,
and (when ../shared is beside the clone) that each reader parses the released files completely."""

import json
from pathlib import Path

import numpy as np
import pytest

from finetune.classification.tasks import (BadRowError, ClassificationScorer, DataFileError, GenericOptions, create_task,
                            macro_f1)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classifier"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def read(name, subdir, split, **kwargs):
  require_labels = kwargs.pop("require_labels", True)
  task = create_task(name, str(FIXTURES / subdir), **kwargs)
  return task, task.get_examples(split, require_labels=require_labels)


def test_chnsenticorp_skips_its_header_and_reads_label_first_rows():
  for split in ("train", "dev", "test"):
    task, examples = read("chnsenticorp", "chnsenticorp", split)
    assert len(examples) == 5 and task.labels == ["0", "1"]
    assert all(e.text_b is None and e.label in ("0", "1") for e in examples)
  _, dev = read("chnsenticorp", "chnsenticorp", "dev")
  assert dev[0].text_a.startswith("這間酒店環境") and dev[0].label == "1" and dev[0].guid == "dev-2"


def test_xnli_15_language_files_keep_only_chinese_rows_with_columns_6_7_1():
  task, dev = read("xnli", "xnli_15lang", "dev")
  assert [e.label for e in dev] == ["neutral", "contradiction", "entailment"]
  assert dev[0].text_a == "他说，“妈妈，我回来了。”"  # quotes kept: files are read without quoting
  assert dev[0].text_b == "校车把他放下后，他立即给他妈妈打了电话。"
  assert [e.guid for e in dev] == ["dev-3", "dev-4", "dev-6"]  # file line numbers
  assert task.read_stats["dev"].skipped == 3  # en, fr, ar
  _, test = read("xnli", "xnli_15lang", "test")
  assert [(e.text_a, e.label) for e in test] == [("会议在下午三点开始。", "entailment"),
                                                 ("她买了一本书。", "neutral")]


def test_xnli_multinli_training_file_maps_contradictory_to_contradiction():
  task, train = read("xnli", "xnli_15lang", "train")
  assert task.data_file("train").endswith("multinli/multinli.train.zh.tsv")
  assert len(train) == 5
  assert [e.label for e in train] == ["neutral", "entailment", "entailment", "entailment",
                                      "contradiction"]
  assert task.labels == ["contradiction", "entailment", "neutral"]


def test_xnli_accepts_the_chinese_only_preprocessed_files():
  _, dev = read("xnli", "xnli_zh", "dev")
  assert len(dev) == 6 and dev[0].text_a == "他说，妈妈，我回来了。" and dev[0].label == "neutral"


def test_xnli_rejects_an_unknown_header(tmp_path):
  (tmp_path / "dev.tsv").write_text("a\tb\tc\td\n1\t2\t3\t4\n", encoding="utf-8")
  with pytest.raises(DataFileError, match="unrecognised XNLI header"):
    create_task("xnli", str(tmp_path)).get_examples("dev")


def test_lcqmc_keeps_the_first_row_of_headerless_files_and_detects_a_header():
  _, headerless = read("lcqmc", "lcqmc", "dev")
  assert len(headerless) == 6  # the release skipped the first row and had 5
  assert headerless[0].text_a == "开初婚未育证明怎么弄？" and headerless[0].label == "1"
  _, with_header = read("lcqmc", "lcqmc_header", "dev")
  assert len(with_header) == 3 and with_header[0].text_a == "开初婚未育证明怎么弄？"
  _, bq = read("bqcorpus", "lcqmc", "dev")  # the release's task name
  assert len(bq) == 6


def test_bad_rows_stop_the_run_with_file_and_line():
  task = create_task("lcqmc", str(FIXTURES / "bad_rows" / "lcqmc"))
  with pytest.raises(BadRowError, match=r"dev\.tsv:2: expected 3 tab-separated columns, found 2"):
    task.get_examples("dev")
  skipping = create_task("lcqmc", str(FIXTURES / "bad_rows" / "lcqmc"), skip_bad_rows=True)
  examples = skipping.get_examples("dev")
  assert [e.guid for e in examples] == ["dev-1", "dev-3", "dev-5"]
  assert skipping.read_stats["dev"].bad == 2


def test_unknown_label_is_a_bad_row(tmp_path):
  (tmp_path / "dev.tsv").write_text("如何学习英语\t英语怎么学\t1\n如何学习英语\t英语怎么学\t2\n",
                                    encoding="utf-8")
  with pytest.raises(BadRowError, match=r"dev\.tsv:2: unknown label '2'"):
    create_task("lcqmc", str(tmp_path)).get_examples("dev")
  # Prediction needs no labels: a placeholder label does not stop it.
  (tmp_path / "test.tsv").write_text("如何学习英语\t英语怎么学\t-1\n", encoding="utf-8")
  test = create_task("lcqmc", str(tmp_path)).get_examples("test", require_labels=False)
  assert [(e.text_a, e.label) for e in test] == [("如何学习英语", None)]


def test_bad_json_rows_are_reported_and_skippable():
  directory = str(FIXTURES / "bad_rows" / "afqmc")
  with pytest.raises(BadRowError, match=r"dev\.json:2: not valid JSON"):
    create_task("afqmc", directory).get_examples("dev")
  task = create_task("afqmc", directory, skip_bad_rows=True)
  assert [e.text_a for e in task.get_examples("dev")] == ["花呗怎么还款", "花呗分期"]
  assert task.read_stats["dev"].bad == 2  # broken JSON, missing sentence2


def test_ocnli_leaves_out_dash_labels_and_finds_train_3k():
  task, dev = read("ocnli", "ocnli", "dev")
  assert len(dev) == 6 and task.read_stats["dev"].skipped == 1
  assert "我觉得我好象不适合去华尔街啦." not in [e.text_a for e in dev]
  assert dev[0].guid == "dev-0" and dev[0].text_b == "身上至少一件衣服"
  task, train = read("ocnli", "ocnli", "train")
  assert task.data_file("train").endswith("train.3k.json") and len(train) == 5


def test_clue_single_sentence_tasks_and_label_names():
  task, tnews = read("tnews", "clue/tnews", "dev")
  assert len(tnews) == 5 and len(task.labels) == 15 and tnews[0].label == "102"
  assert task.label_display_names()["102"] == "102:news_entertainment"
  task, iflytek = read("iflytek", "clue/iflytek", "dev")
  assert len(iflytek) == 5 and len(task.labels) == 119 and iflytek[1].label == "70"
  assert task.label_display_names()["70"] == "70:工具"
  _, afqmc = read("afqmc", "clue/afqmc", "dev")
  assert [e.label for e in afqmc] == ["0", "0", "1", "0", "0"] and afqmc[0].text_b == "里可以提花呗额度"


def test_comma_separated_reviews_keep_their_commas():
  _, weibo = read("weibo", "weibo", "train")
  assert [e.label for e in weibo] == ["1", "0", "1"]
  assert weibo[1].text_a == "排了两个小时的队,结果卖完了,太失望了"
  _, shopping = read("shopping", "shopping", "train")
  assert shopping[0].text_a == "内容很好,印刷清晰,值得一读" and shopping[1].label == "0"


def test_thucnews_reads_cnews_files_without_losing_the_first_row(tmp_path):
  task, train = read("thucnews", "thucnews", "train")
  assert [e.label for e in train] == ["体育", "财经", "游戏"] and len(task.labels) == 10
  (tmp_path / "cnews.train.txt").write_text("社会\t一条社会新闻。\n体育\t一条体育新闻。\n", encoding="utf-8")
  (tmp_path / "labels.txt").write_text("体育\n社会\n", encoding="utf-8")
  task = create_task("thucnews", str(tmp_path))
  assert task.labels == ["体育", "社会"] and len(task.get_examples("train")) == 2


@pytest.mark.parametrize("name,subdir,train_labels,test_texts", [
    ("mnli", "MNLI", ["neutral", "entailment", "contradiction"], 2),
    ("mrpc", "MRPC", ["1", "0"], 1),
    ("cola", "CoLA", ["1", "0", "1"], 2),
    ("sst2", "SST-2", ["0", "0", "1"], 1),
    ("qnli", "QNLI", ["not_entailment", "entailment"], 1),
])
def test_glue_tasks_read_labelled_and_test_layouts(name, subdir, train_labels, test_texts):
  task, train = read(name, f"glue/{subdir}", "train")
  assert [e.label for e in train] == train_labels
  assert all((e.text_b is not None) == task.is_pair for e in train)
  _, test = read(name, f"glue/{subdir}", "test", require_labels=False)
  assert len(test) == test_texts and all(e.label is None and e.text_a for e in test)
  with pytest.raises(BadRowError, match="no label"):
    create_task(name, str(FIXTURES / "glue" / subdir)).get_examples("test")


def test_glue_field_positions():
  _, mnli = read("mnli", "glue/MNLI", "dev")
  assert mnli[0].text_a == "The new rights are nice enough" and mnli[0].label == "neutral"
  _, mrpc = read("mrpc", "glue/MRPC", "train")
  assert mrpc[0].text_a.startswith("Amrozi accused") and mrpc[0].text_b.startswith("Referring")
  _, cola = read("cola", "glue/CoLA", "train")
  assert cola[1].text_a == "They drank the pub." and cola[1].label == "0"


def test_generic_tsv_with_named_columns_takes_labels_from_training_file():
  options = GenericOptions(text_a_column="text", label_column="label")
  task = create_task("generic", str(FIXTURES / "generic_tsv"), generic_options=options)
  assert task.labels == ["neg", "neu", "pos"] and not task.is_pair
  assert [e.label for e in task.get_examples("dev")] == ["pos", "neg"]
  test = task.get_examples("test", require_labels=False)
  assert [(e.text_a, e.label) for e in test] == [("环境很好", None), ("上菜太慢", None)]


def test_generic_headerless_pairs_by_index_and_explicit_label_order():
  options = GenericOptions(text_a_column="1", text_b_column="2", label_column="0", labels=("1", "0"))
  task = create_task("generic", str(FIXTURES / "generic_headerless"), generic_options=options)
  train = task.get_examples("train")
  assert task.is_pair and task.labels == ["1", "0"] and len(train) == 3
  assert train[0].text_a == "怎么修改密码" and train[0].text_b == "如何更改密码"


def test_generic_jsonl_and_saved_label_file_take_precedence(tmp_path):
  options = GenericOptions(data_format="jsonl", text_a_column="query", label_column="intent")
  task = create_task("generic", str(FIXTURES / "generic_jsonl"), generic_options=options)
  assert task.labels == ["book_flight", "play_music", "weather"]
  assert task.get_examples("dev")[0].label == "book_flight"
  label_file = tmp_path / "label_list.json"
  label_file.write_text(json.dumps({"labels": ["weather", "play_music", "book_flight"]}))
  saved = create_task("generic", str(FIXTURES / "generic_jsonl"),
                      generic_options=options._replace(label_file=str(label_file)))
  assert saved.labels == ["weather", "play_music", "book_flight"]


def test_generic_reports_missing_columns_and_unknown_dev_labels(tmp_path):
  options = GenericOptions(text_a_column="sentence", label_column="label")
  with pytest.raises(DataFileError, match="no column"):
    create_task("generic", str(FIXTURES / "generic_tsv"), generic_options=options).labels
  (tmp_path / "train.tsv").write_text("text_a\tlabel\n好\tpos\n坏\tneg\n", encoding="utf-8")
  (tmp_path / "dev.tsv").write_text("text_a\tlabel\n一般\tneu\n", encoding="utf-8")
  task = create_task("generic", str(tmp_path), generic_options=GenericOptions())
  with pytest.raises(BadRowError, match=r"dev\.tsv:2: unknown label 'neu'"):
    task.get_examples("dev")


def test_unknown_task_and_missing_file_messages(tmp_path):
  with pytest.raises(ValueError, match="not a known task"):
    create_task("nosuchtask", str(tmp_path))
  with pytest.raises(DataFileError, match=r"looked for train\.tsv, train\.txt, train"):
    create_task("lcqmc", str(tmp_path)).get_examples("train")


def test_scorer_accuracy_loss_and_macro_f1():
  gold = np.array([0, 0, 1, 1])
  probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
  scorer = ClassificationScorer(["a", "b"], report_macro_f1=True)
  scorer.update(gold[:2], np.log(probabilities[:2]))
  scorer.update(gold[2:], np.log(probabilities[2:]))
  results = scorer.results()
  assert results["accuracy"] == 0.75 and results["num_examples"] == 4
  assert results["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])))
  # class a: P 1, R 1/2, F1 2/3; class b: P 2/3, R 1, F1 4/5.
  assert results["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
  assert macro_f1([0, 1], [0, 1]) == 1.0
  assert not create_task("chnsenticorp", ".").scorer().report_macro_f1
  assert create_task("lcqmc", ".").scorer().report_macro_f1


REAL_FILES = [
    ("chnsenticorp", "chnsenticorp", "train", 9600), ("chnsenticorp", "chnsenticorp", "dev", 1200),
    ("chnsenticorp", "chnsenticorp", "test", 1200), ("xnli", "xnli_zh", "dev", 2490),
    ("lcqmc", "lcqmc", "dev", 8802), ("ocnli", "ocnli", "train", 2994), ("ocnli", "ocnli", "dev", 2950),
    ("afqmc", "clue/afqmc", "dev", 4316), ("tnews", "clue/tnews", "dev", 10000),
    ("iflytek", "clue/iflytek", "dev", 2599),
]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data (the released files) is not beside "
                    "this clone")
@pytest.mark.parametrize("name,subdir,split,count", REAL_FILES)
def test_every_reader_parses_its_real_file_completely(name, subdir, split, count):
  task = create_task(name, str(SHARED_DATA / subdir))
  examples = task.get_examples(split)
  assert len(examples) == count
  stats = task.read_stats[split]
  assert stats.bad == 0
  # Only OCNLI leaves rows out: its `-` labels (6 in train.3k, 50 in dev).
  assert stats.skipped == {("ocnli", "train"): 6, ("ocnli", "dev"): 50}.get((name, split), 0)
  assert {e.label for e in examples} == set(task.labels)
