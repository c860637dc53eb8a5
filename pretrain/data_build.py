"""The pretraining data run: documents -> chunks -> worker processes -> sharded TFRecords + summary.

Design for reproducibility: documents are shuffled once with a generator seeded by random_seed, cut
into chunks of documents_per_chunk, and every chunk is processed with its own seeded generators
(chunk_processor). Results are written in chunk order, records dealt round-robin over the shards, so
the files depend on the flags and the input only, not on num_workers. Nothing reaches a final file
name before the whole run has succeeded.
"""

import collections
import contextlib
import dataclasses
import gc
import json
import multiprocessing
import platform
import random
import time

from absl import logging

from mobilebert import tokenization
from pretrain import chunk_processor
from pretrain import corpus
from pretrain import data_files
from pretrain.tfrecord_writer import ShardedRecordWriter

TOOL = "pretrain.create_pretraining_data"

# Judge the share of [UNK] once this many tokens have been seen (fewer say little about the vocab).
_UNK_CHECK_MIN_TOKENS = 2000


class VocabMismatchError(tokenization.VocabError):
  """Text that the vocab mostly cannot represent."""


def make_chunks(documents, config):
  """ChunkTasks over the documents, shuffled with the run's seed (documents is not modified)."""
  documents = list(documents)
  random.Random(f"{config.random_seed}:documents").shuffle(documents)
  size = config.documents_per_chunk
  return [chunk_processor.ChunkTask(i, documents[start:start + size])
          for i, start in enumerate(range(0, len(documents), size))]


def build(config):
  """Runs the tool. Returns the summary dict (also written as JSON beside the output)."""
  start = time.time()
  config.validate()
  output_paths = data_files.output_shard_paths(config.output_file)
  summary_file = data_files.summary_path(config.output_file)
  input_paths = data_files.expand_file_patterns(config.input_file, "input_file")
  data_files.check_spares_inputs({"--output_file": output_paths + [summary_file]},
                                 {"--input_file": input_paths, "--vocab_file": config.vocab_file})
  data_files.check_not_existing(output_paths + [summary_file], config.overwrite, "output_file", TOOL)
  stale = data_files.other_shard_counts(config.output_file)
  if stale:
    logging.warning("%d shard(s) of an earlier run with another shard count are in the output directory "
                    "(e.g. %s); a glob over the shards would read them too", len(stale), stale[0])
  try:
    processor = chunk_processor.ChunkProcessor(config)
  except tokenization.VocabError as e:
    raise tokenization.VocabError(f"--vocab_file: {e}") from None
  text = corpus.read_documents(input_paths, config.input_encoding, config.max_invalid_line_fraction)
  chunks = make_chunks(text.documents, config)
  num_workers = min(config.resolved_num_workers(), len(chunks))
  logging.info("%d documents, %d sentences from %d file(s); %d chunks on %d worker(s)",
               len(text.documents), text.num_sentences, len(input_paths), len(chunks), num_workers)
  totals = collections.Counter()
  progress = _Progress(len(text.documents), config.progress_seconds, start)
  # closing(): on an error the pool is shut down at once, not when the generator is collected.
  with ShardedRecordWriter(output_paths, config.overwrite, TOOL) as writer, \
       contextlib.closing(_run_chunks(processor, chunks, num_workers)) as results:
    for result in results:
      for record in result.records:
        writer.write(record)
      totals.update(result.stats)
      _check_unk_fraction(totals, config, final=False)
      progress.update(totals)
    _check_unk_fraction(totals, config, final=True)
    if not totals["instances"]:
      raise corpus.CorpusError(f"--input_file: {len(text.documents)} document(s) but no tokens to make "
                               f"instances of (only characters the tokenizer drops?)")
    if 0 in writer.counts:
      logging.warning("%d of %d output files are empty: fewer instances (%d) than files",
                      writer.counts.count(0), len(writer.counts), totals["instances"])
    writer.commit()
  seconds = time.time() - start
  progress.finish(totals)
  summary = make_summary(config, text, totals, writer, num_workers, seconds)
  data_files.atomic_write_text(summary_file, json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                               config.overwrite, TOOL)
  logging.info("wrote %d instances to %d file(s) in %.1f s; summary: %s",
               totals["instances"], len(output_paths), seconds, summary_file)
  return summary


def _run_chunks(processor, chunks, num_workers):
  """Yields ChunkResults in chunk order, computed here or by a pool of worker processes."""
  chunk_processor.set_processor(processor)
  if num_workers <= 1:
    for chunk in chunks:
      yield processor.process(chunk)
    return
  # Linux forks: workers inherit the processor (vocab and jieba dictionary already loaded). Where the
  # default is spawn (macOS, Windows) the initializer builds one per worker. gc.freeze(): the
  # children's garbage collector leaves the parent's objects alone (no copy of their pages, and no
  # finalizer of a TensorFlow object running in a child that never uses TensorFlow).
  gc.freeze()
  try:
    pool = multiprocessing.get_context().Pool(
        num_workers, initializer=chunk_processor.init_worker, initargs=(processor.config,))
  finally:
    gc.unfreeze()
  try:
    yield from pool.imap(chunk_processor.process_in_worker, chunks, chunksize=1)
    pool.close()
  finally:
    pool.terminate()
    pool.join()


def _check_unk_fraction(totals, config, final):
  tokens = totals["text_tokens"]
  if not tokens or (tokens < _UNK_CHECK_MIN_TOKENS and not final):
    return
  fraction = totals["unk_tokens"] / tokens
  if fraction > config.max_unk_fraction:
    raise VocabMismatchError(
        f"--vocab_file={config.vocab_file}: {fraction:.1%} of the {tokens} tokens read so far from "
        f"--input_file are [UNK] (more than --max_unk_fraction={config.max_unk_fraction}). The vocab "
        f"does not fit this text: wrong vocab, language or --do_lower_case? No output was written.")


def _ratio(numerator, denominator):
  return round(numerator / denominator, 6) if denominator else 0.0


def make_summary(config, text, totals, writer, num_workers, seconds):
  """The run's statistics, for the JSON beside the output."""
  import jieba  # pylint: disable=g-import-not-at-top
  masked = totals["masked_tokens"]
  return {
      "instances": totals["instances"],
      "tokens": totals["instance_tokens"],
      "masked_tokens": masked,
      "masked_fraction": _ratio(masked, totals["maskable_tokens"]),
      "mask_token_fraction": _ratio(totals["mask_token"], masked),
      "random_token_fraction": _ratio(totals["random_token"], masked),
      "kept_token_fraction": _ratio(totals["kept_token"], masked),
      "masked_words": totals["masked_words"],
      "whole_words_masked": totals["whole_words_masked"],
      "average_sequence_fill": _ratio(totals["instance_tokens"],
                                      totals["instances"] * config.max_seq_length),
      "random_next_fraction": _ratio(totals["random_next"], totals["instances"]),
      "documents": len(text.documents),
      "sentences": text.num_sentences,
      "text_tokens": totals["text_tokens"],
      "unk_fraction": _ratio(totals["unk_tokens"], totals["text_tokens"]),
      "invalid_utf8_lines": text.num_invalid_lines,
      "segmenter_mismatches": totals["segmenter_mismatches"],
      "input_files": text.files,
      "files": [{"path": p, "instances": n} for p, n in zip(writer.paths, writer.counts)],
      "seconds": round(seconds, 3),
      "instances_per_second": round(totals["instances"] / seconds, 1) if seconds else 0.0,
      "num_workers": num_workers,
      "flags": {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("num_workers", "progress_seconds")},
      "versions": {"python": platform.python_version(), "jieba": jieba.__version__},
  }


class _Progress:
  """A log line every `period` seconds: documents done, instances, rate."""

  def __init__(self, num_documents, period, start):
    self.num_documents = num_documents
    self.period = period
    self.start = start
    self.last = start

  def _line(self, totals, now):
    elapsed = max(now - self.start, 1e-9)
    done = totals["documents"]
    return (f"documents {done:,}/{self.num_documents:,} ({done / self.num_documents:.0%}), "
            f"instances {totals['instances']:,}, {totals['instances'] / elapsed:,.0f} instances/s, "
            f"{elapsed:.0f} s")

  def update(self, totals):
    now = time.time()
    if now - self.last >= self.period:
      self.last = now
      logging.info("%s", self._line(totals, now))

  def finish(self, totals):
    logging.info("done: %s", self._line(totals, time.time()))
