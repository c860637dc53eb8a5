# coding=utf-8
"""--input_encoding for the fine-tuning data (mobilebert/text_encoding.py): GBK, Big5 or UTF-16 files
read as the same examples as their UTF-8 copies, in every reader (TSV, CSV, JSON lines, CoNLL, SQuAD
JSON); a file not in the encoding is one line naming file, line and the flag; the encoding is part of
the feature-cache key; an unknown codec is refused."""

import json

import pytest

from finetune.classification.tasks import BadRowError, GenericOptions, create_task
from finetune.span import data as span_data
from finetune.span import records as span_records
from finetune.tagging import formats as tagging_formats
from finetune.tagging.task import TaggingTask
from finetune.core.run_config import FinetuneRunConfig
from mobilebert import cli, text_encoding
from mobilebert.run_config import RunSettings

ROWS = ["我喜欢猫\t我爱猫\t1", "今天下雨\t明天晴天\t0", "臺灣的天氣\t台湾天气\t1"]
TRADITIONAL_ROWS = ["我喜歡貓\t我愛貓\t1", "今天下雨\t明天晴天\t0"]  # Big5 has no simplified forms


def _write(path, text, encoding):
  path.write_bytes(text.encode(encoding))
  return path


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5", "utf-16"])
def test_a_tsv_task_reads_the_same_examples_in_any_encoding(tmp_path, encoding):
  rows = TRADITIONAL_ROWS if encoding == "big5" else ROWS
  read = {}
  for name, enc in (("utf8", "utf-8"), ("other", encoding)):
    (tmp_path / name).mkdir()
    _write(tmp_path / name / "train.tsv", "\n".join(rows) + "\n", enc)
    read[name] = create_task("lcqmc", str(tmp_path / name), encoding=enc).get_examples("train")
  assert read["other"] == read["utf8"]
  assert [(e.text_a, e.text_b, e.label) for e in read["other"]] == [tuple(r.split("\t")) for r in rows]


def test_text_in_another_encoding_is_one_line_naming_file_line_and_flag(tmp_path):
  _write(tmp_path / "train.tsv", "\n".join(ROWS[:2]) + "\n", "gbk")
  with pytest.raises(BadRowError, match=r"train\.tsv:1: not utf-8 text \(.*\); --input_encoding "
                                        r"reads other encodings"):
    create_task("lcqmc", str(tmp_path)).get_examples("train")


@pytest.mark.parametrize("data_format,text", [
    ("csv", 'label,review\n1,"好,很好"\n0,坏\n'),
    ("jsonl", '{"label": "1", "review": "好,很好"}\n{"label": "0", "review": "坏"}\n'),
])
def test_generic_csv_and_json_lines_read_gbk(tmp_path, data_format, text):
  _write(tmp_path / f"train.{data_format}", text, "gbk")
  options = GenericOptions(data_format=data_format, text_a_column="review", label_column="label")
  task = create_task("generic", str(tmp_path), generic_options=options, encoding="gbk")
  assert [e.text_a for e in task.get_examples("train")] == ["好,很好", "坏"]
  with pytest.raises(BadRowError, match=rf"train\.{data_format}:\d+: not utf-8 text"):
    create_task("generic", str(tmp_path), generic_options=options).get_examples("train")


def test_the_encoding_is_part_of_the_cache_key_only_when_not_utf8(tmp_path):
  _write(tmp_path / "train.tsv", "\n".join(ROWS[:2]) + "\n", "utf-8")
  assert "encoding" not in create_task("lcqmc", str(tmp_path)).signature()
  assert create_task("lcqmc", str(tmp_path), encoding="gb18030").signature()["encoding"] == "gb18030"


@pytest.mark.parametrize("data_format", ["conll", "jsonl"])
def test_tagging_files_read_gbk(tmp_path, data_format):
  text = ("北 B-LOC\n京 I-LOC\n好 O\n\n" if data_format == "conll" else
          json.dumps({"text": "北京好", "entities": [{"start": 0, "end": 2, "label": "LOC"}]},
                     ensure_ascii=False) + "\n")
  _write(tmp_path / f"train.{data_format}", text, "gbk")
  task = TaggingTask(str(tmp_path), data_format, encoding="gbk")
  [sentence] = task.sentences("train")
  assert sentence.text == "北京好" and [e.label for e in sentence.entities] == ["LOC"]
  assert task.signature()["encoding"] == "gbk"
  with pytest.raises(tagging_formats.TaggingFileError, match=rf"train\.{data_format}:1: not utf-8 text"):
    TaggingTask(str(tmp_path), data_format).sentences("train")


def test_squad_json_reads_big5_and_the_cache_key_says_so(tmp_path):
  dataset = {"version": "1", "data": [{"paragraphs": [{"context": "臺北是首都。", "qas": [
      {"id": "q1", "question": "首都是哪裡？", "answers": [{"text": "臺北", "answer_start": 0}]}]}]}]}
  path = _write(tmp_path / "dev.json", json.dumps(dataset, ensure_ascii=False), "big5")
  examples, _ = span_data.read_examples(str(path), encoding="big5")
  assert examples[0].question == "首都是哪裡？" and examples[0].context == "臺北是首都。"
  with pytest.raises(span_data.SpanDataError, match=r"dev\.json:1: not utf-8 text"):
    span_data.read_squad_json(str(path))
  vocab = _write(tmp_path / "vocab.txt", "[PAD]\n", "utf-8")
  keys = {enc: span_records.cache_key(str(path), str(vocab), True, (64, 32, 16), False, True, enc)
          for enc in ("utf-8", "big5")}
  assert keys["utf-8"] != keys["big5"]


def test_an_unknown_encoding_is_refused_naming_the_flag():
  config = FinetuneRunConfig(vocab_file="v", bert_config_file="c", run=RunSettings(output_dir="o"),
                             input_encoding="klingon")
  with pytest.raises(cli.FlagError, match="--input_encoding='klingon' is not an encoding"):
    config.check_training()
  assert text_encoding.known("gb18030") and not text_encoding.known("klingon")


def test_run_classifier_trains_and_scores_gbk_data_with_the_flag(tmp_path):
  """The release's ChnSentiCorp slice re-encoded in GBK, as older Chinese data sets were shipped."""
  from finetune.classification.runner import ClassifierRunConfig, run  # pylint: disable=g-import-not-at-top
  from mobilebert import assets  # pylint: disable=g-import-not-at-top
  from conftest import CONFIG_DIR, ROOT  # pylint: disable=g-import-not-at-top
  data = tmp_path / "gbk"
  data.mkdir()
  for split in ("train", "dev"):
    text = (ROOT / "tests" / "fixtures" / "classifier" / "chnsenticorp" / f"{split}.tsv").read_text(
        encoding="utf-8")
    _write(data / f"{split}.tsv", text, "gbk")

  def config(encoding, output):
    return ClassifierRunConfig(
        task_name="chnsenticorp", data_dir=str(data), vocab_file=assets.chinese_vocab_file(),
        bert_config_file=str(CONFIG_DIR / "tiny_student_zh.json"), max_seq_length=32,
        do_train=True, do_eval=True, train_batch_size=2, num_train_steps=1,
        input_encoding=encoding, run=RunSettings(output_dir=str(tmp_path / output)))

  with pytest.raises(BadRowError, match=r"gbk/train\.tsv:2: not utf-8 text"):
    run(config("utf-8", "utf8_out"))
  report = run(config("gbk", "gbk_out"))
  assert report.num_train_steps == 1 and 0.0 <= report.best["accuracy"] <= 1.0
