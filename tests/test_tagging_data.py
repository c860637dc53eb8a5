"""Tagging data: People's Daily entities (incl. bracketed compounds), the document split that holds out
the quick start's documents, CoNLL / JSON-lines readers and their errors, and the entity metric."""

import json
import pathlib

import pytest

from finetune.tagging import entities as entities_lib
from finetune.tagging import formats, peoples_daily
from finetune.tagging import prepare_peoples_daily_ner as prepare_ner
from finetune.tagging.metric import EntityScorer
from pretrain import prepare_peoples_daily as pretraining_corpus
from quickstart import recipe, sizes


def _named(sentence):
  return [(sentence.text[e.start:e.end], e.label) for e in sentence.entities]


def test_person_names_join_and_brackets_are_one_entity_of_their_tag():
  line = ("[中共中央/nt  宣传部/n]nt  部长/n  江/nr  泽民/nr  、/w  [北京/ns  大学/n]nz  在/p  "
          "[中国/ns  北京/ns]ns  ，/w  新华社/nt  记者/n  兰/nr  红光/nr  。/w  他/r  说/v  。/w")
  first, second = peoples_daily.paragraph_sentences(line, "d")
  assert first.text == "中共中央宣传部部长江泽民、北京大学在中国北京，新华社记者兰红光。"
  # ]nz is not an entity tag: its words count on their own (北京/ns is a place).
  assert _named(first) == [("中共中央宣传部", "ORG"), ("江泽民", "PER"), ("北京", "LOC"),
                           ("中国北京", "LOC"), ("新华社", "ORG"), ("兰红光", "PER")]
  assert second.text == "他说。" and second.entities == ()
  assert first.units == tuple((i, i + 1) for i in range(len(first.text)))


def test_adjacent_places_stay_separate_and_bad_brackets_are_named():
  (sentence,) = peoples_daily.paragraph_sentences("中国/ns  北京/ns  。/w", "d")
  assert _named(sentence) == [("中国", "LOC"), ("北京", "LOC")]
  for line, message in (("[中国/ns  北京/ns", "never closed"), ("中国/ns]ns", "closes no bracket"),
                        ("中国", "not word/tag")):
    with pytest.raises(peoples_daily.CorpusError, match=f"^doc 3: .*{message}"):
      peoples_daily.parse_line(line, where="doc 3")


def test_real_corpus_entities_and_sentences():
  from mobilebert import assets
  lines = pretraining_corpus.read_tagged_lines(assets.peoples_daily_file(), max_lines=3)
  sentences = peoples_daily.document_sentences(lines, "d")
  assert [s.text for s in sentences][:2] == ["迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）",
                                             "中共中央总书记、国家主席江泽民"]
  assert _named(sentences[1]) == [("中共中央", "ORG"), ("江泽民", "PER")]


@pytest.fixture(scope="module")
def quickstart_heldout(tmp_path_factory):
  """The quick start's held-out documents, made by running its own corpus command's settings."""
  size = sizes.get("small")
  paths = recipe.Paths(str(tmp_path_factory.mktemp("qs")), ".")
  (command,) = recipe.data_stages(size, paths, "vocab.txt")[0].commands
  flag = dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
  assert int(flag["max_lines"]) == 0  # the whole corpus, as prepare_peoples_daily_ner reads it
  pretraining_corpus.convert(None, flag["output_file"], flag["heldout_file"],
                             float(flag["heldout_fraction"]), int(flag["random_seed"]))
  text = pathlib.Path(flag["heldout_file"]).read_text(encoding="utf-8")
  return flag, [tuple(block.split("\n")) for block in text.strip("\n").split("\n\n")]


def test_test_documents_are_the_quick_starts_heldout_documents(quickstart_heldout):
  from mobilebert import assets
  flag, heldout = quickstart_heldout
  assert float(flag["heldout_fraction"]) == prepare_ner._DEFAULTS.heldout_fraction
  assert int(flag["random_seed"]) == prepare_ner._DEFAULTS.random_seed
  lines = pretraining_corpus.read_tagged_lines(assets.peoples_daily_file())
  parts = prepare_ner.split_documents(lines, prepare_ner._DEFAULTS.heldout_fraction,
                                      prepare_ner._DEFAULTS.dev_fraction,
                                      prepare_ner._DEFAULTS.random_seed)
  sentences = {split: [tuple(s.text for s in peoples_daily.document_sentences(doc, "d"))
                       for doc in documents] for split, documents in parts.items()}
  assert set(sentences["test"]) <= set(heldout) and len(sentences["test"]) == len(heldout)
  others = set(sentences["train"]) | set(sentences["dev"])
  assert not others & set(heldout)
  assert sum(len(d) for d in parts.values()) == len(pretraining_corpus.group_paragraphs(lines))
  assert len(parts["dev"]) == round(0.05 * (len(parts["dev"]) + len(parts["train"])))


def test_prepare_writes_conll_that_reads_back(tmp_path):
  from mobilebert import assets
  summary = prepare_ner.prepare(prepare_ner.PrepareSettings(str(tmp_path), max_lines=400))
  direct = prepare_ner.split_sentences(prepare_ner.split_documents(
      pretraining_corpus.read_tagged_lines(assets.peoples_daily_file(), 400), 0.05, 0.05, 12345))
  for split, name in prepare_ner.SPLIT_FILES.items():
    read = formats.read_conll(str(tmp_path / name))
    assert [(s.text, s.entities) for s in read] == [(s.text, s.entities) for s in direct[split]]
    assert summary["splits"][split]["sentences"] == len(read) > 0
  assert json.loads((tmp_path / "split.json").read_text())["splits"]["test"]["documents"] > 0
  with pytest.raises(Exception, match="already exists.*--overwrite"):
    prepare_ner.prepare(prepare_ner.PrepareSettings(str(tmp_path), max_lines=400))


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return str(path)


def test_conll_reader_units_entities_and_conlleval_restarts(tmp_path):
  path = _write(tmp_path / "a.conll", "-DOCSTART- O\n\n张 B-PER\n三 I-PER\n在 O\n北 I-LOC\n京 I-LOC\n\n"
                "ABC B-ORG\n公 I-ORG\n司 I-PER\n")
  first, second = formats.read_conll(path)
  assert (first.guid, second.guid) == ("line 3", "line 9")
  assert first.text == "张三在北京" and _named(first) == [("张三", "PER"), ("北京", "LOC")]
  # A multi-character token is one unit; a type change inside an entity starts a new one.
  assert second.units[:2] == ((0, 3), (3, 4))
  assert _named(second) == [("ABC公", "ORG"), ("司", "PER")]


@pytest.mark.parametrize("text,message", [
    ("张 B-PER\n三 X-PER\n", "a.conll:2: tag 'X-PER' is not O, B-<type> or I-<type>"),
    ("张 B-PER\n三 B-\n", "a.conll:2: tag 'B-'"),
    ("张 B-PER\n三\n", "a.conll:2: expected `token tag` or `token` alone"),
    ("张\n三\n", "a.conll:1: no tag column"),
])
def test_conll_bad_inputs(tmp_path, text, message):
  path = _write(tmp_path / "a.conll", text)
  with pytest.raises(formats.TaggingFileError, match=message.replace("?", r"\?")):
    formats.read_conll(path)


def test_conll_without_tags_for_prediction(tmp_path):
  (sentence,) = formats.read_conll(_write(tmp_path / "t.conll", "张\n三\n"), require_labels=False)
  assert sentence.text == "张三" and sentence.entities is None


def test_jsonl_reader(tmp_path):
  rows = [{"text": "张三在北京", "entities": [{"start": 3, "end": 5, "label": "LOC"},
                                            {"start": 0, "end": 2, "label": "PER"}], "id": "x"},
          {"text": "没有", "entities": []}]
  path = _write(tmp_path / "a.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
  first, second = formats.read_jsonl(path)
  assert first.guid == "x" and second.guid == "line 2" and _named(first) == [("张三", "PER"), ("北京", "LOC")]
  assert second.entities == () and second.units == ((0, 1), (1, 2))


@pytest.mark.parametrize("row,message", [
    ({"text": "张三", "entities": [{"start": 0, "end": 3, "label": "PER"}]}, "a.jsonl:1: .* out of range"),
    ({"text": "张三", "entities": [{"start": 1, "end": 1, "label": "PER"}]}, "out of range"),
    ({"text": "张三在", "entities": [{"start": 0, "end": 2, "label": "PER"},
                                   {"start": 1, "end": 3, "label": "LOC"}]}, "a.jsonl:1: entities .* overlap"),
    ({"text": "张三", "entities": [{"start": 0, "end": 2}]}, 'lacks "start", "end" or "label"'),
    ({"text": "张三", "entities": [{"start": 0, "end": 2, "label": "B-PER"}]}, "without '-'"),
    ({"text": "张三"}, 'a.jsonl:1: no "entities"'),
    ({"txt": "张三"}, 'a.jsonl:1: expected an object with a non-empty "text"'),
])
def test_jsonl_bad_inputs(tmp_path, row, message):
  path = _write(tmp_path / "a.jsonl", json.dumps(row, ensure_ascii=False) + "\n")
  with pytest.raises(formats.TaggingFileError, match=message):
    formats.read_jsonl(path)


def test_jsonl_not_json_and_missing_file(tmp_path):
  with pytest.raises(formats.TaggingFileError, match=r"b.jsonl:2: not valid JSON"):
    formats.read_jsonl(_write(tmp_path / "b.jsonl", '{"text": "a", "entities": []}\n{oops\n'))
  with pytest.raises(formats.TaggingFileError, match="data file not found"):
    formats.read_jsonl(str(tmp_path / "none.jsonl"))


def test_entity_metric_follows_conlleval_on_a_hand_computed_fixture():
  # Expected numbers worked out by hand from conlleval's chunk rules (a chunk starts at B-, at an I-
  # after O or after another type, and ends at the sentence end; correct = same start, end and type):
  #  1. gold PER(0,2) LOC(3,4)   pred PER(0,2) ORG(3,4)      correct PER
  #  2. gold LOC(1,3)            pred I- after O: LOC(1,3)   correct LOC
  #  3. gold ORG(0,3)            pred ORG(0,1) PER(1,3)      (type change mid-entity) none
  #  4. gold PER(1,2) LOC(3,5)   pred the same               (entity at sentence end) PER, LOC
  #  5. gold I- at start LOC(0,1)  pred LOC(0,1)             correct LOC (no joining across sentences)
  # gold 7 (PER 2, LOC 4, ORG 1), predicted 8 (PER 3, LOC 3, ORG 2), correct 5 (PER 2, LOC 3).
  # Cross-checked with seqeval 1.2.2 (default, conlleval-compatible mode) in a separate venv:
  # precision_score/recall_score/f1_score of these lists give 0.625 / 0.7143 / 0.6667 and its
  # classification_report LOC 1.0/0.75/0.8571, ORG 0/0/0, PER 0.6667/1.0/0.8 (seqeval needs
  # scikit-learn, so it is not a test dependency).
  fixture = [
      ("B-PER I-PER O B-LOC", "B-PER I-PER O B-ORG"),
      ("O B-LOC I-LOC O", "O I-LOC I-LOC O"),
      ("B-ORG I-ORG I-ORG", "B-ORG I-PER I-PER"),
      ("O B-PER O B-LOC I-LOC", "O B-PER O B-LOC I-LOC"),
      ("I-LOC O", "B-LOC O"),
  ]
  scorer = EntityScorer()
  for gold, predicted in fixture:
    scorer.update_tags(gold.split(), predicted.split())
  results = scorer.results()
  assert (results["num_gold_entities"], results["num_predicted_entities"],
          results["num_correct_entities"]) == (7, 8, 5)
  assert results["precision"] == pytest.approx(5 / 8)
  assert results["recall"] == pytest.approx(5 / 7)
  assert results["f1"] == pytest.approx(2 / 3)
  assert results["PER_f1"] == pytest.approx(0.8)
  assert results["LOC_precision"] == 1.0 and results["LOC_recall"] == 0.75
  assert results["LOC_f1"] == pytest.approx(6 / 7)
  assert results["ORG_f1"] == 0.0 and results["num_sentences"] == 5


def test_chunks_and_tags_round_trip():
  tags = "B-PER I-PER B-PER O B-LOC I-LOC".split()
  found = entities_lib.chunks(tags)
  assert found == [(0, 2, "PER"), (2, 3, "PER"), (4, 6, "LOC")]
  assert entities_lib.unit_tags(len(tags), found) == tags
  assert entities_lib.tag_names(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_every_entity_type_of_the_task_is_reported():
  scorer = EntityScorer(["PER", "ORG"])
  scorer.update_tags(["B-PER", "O"], ["B-PER", "O"])
  results = scorer.results()
  assert results["PER_f1"] == 1.0 and results["ORG_f1"] == 0.0 and "ORG_recall" in results


def test_prepare_command_errors_are_one_line(tmp_path):
  import os
  import subprocess
  import sys
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="3")
  command = [sys.executable, "-m", "finetune.tagging.prepare_peoples_daily_ner"]
  for args, message in (([], "--output_dir is required"),
                        ([f"--output_dir={tmp_path}", "--dev_fraction=1.5"],
                         "--dev_fraction=1.5: expected a value in [0, 1)"),
                        ([f"--output_dir={tmp_path}", f"--input_file={tmp_path / 'none.txt'}"],
                         "none.txt")):
    result = subprocess.run(command + args, capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("prepare_peoples_daily_ner: error: ") and message in last, last
