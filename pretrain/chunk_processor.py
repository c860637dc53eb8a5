"""One unit of parallel work: a chunk of documents in, serialized pretraining examples out.

Everything random about a chunk comes from generators seeded by (random_seed, chunk index, dupe
round), never by which process runs it, so the bytes of a chunk are the same whatever the number of
workers. Within a chunk the instances of all dupe rounds are shuffled together, as the original tool
shuffles all its instances (it is meant to be run on one input shard at a time).
"""

import collections
import random

from mobilebert import tokenization
from pretrain import instances
from pretrain.example_encoder import InstanceEncoder
from pretrain.masking import Masker
from pretrain.wwm import WholeWordTokenizer

ChunkTask = collections.namedtuple("ChunkTask", ["index", "documents"])
ChunkResult = collections.namedtuple("ChunkResult", ["index", "records", "stats"])


def chunk_rng(random_seed, chunk_index, purpose):
  """A generator for one purpose of one chunk (str seeds are hashed with SHA-512: stable everywhere)."""
  return random.Random(f"{random_seed}:chunk{chunk_index}:{purpose}")


class ChunkProcessor:
  """Tokenizes, segments, cuts, masks and encodes the documents of a chunk."""

  def __init__(self, config):
    self.config = config
    full_tokenizer = tokenization.FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    self.vocab = full_tokenizer.vocab
    self.tokenizer = WholeWordTokenizer(full_tokenizer, config.do_whole_word_mask, config.segmenter)
    self.masker = Masker(self.vocab, config.masked_lm_prob, config.max_predictions_per_seq)
    self.special = instances.SpecialIds.from_vocab(self.vocab)
    self.encoder = InstanceEncoder(config.max_seq_length, config.max_predictions_per_seq, len(self.vocab))
    self.unk_id = self.vocab["[UNK]"]

  def tokenize_documents(self, raw_documents, stats):
    """Lists of TokenizedSentence, without sentences or documents that have no tokens."""
    documents = []
    mismatches_before = self.tokenizer.num_segmenter_mismatches
    for raw_document in raw_documents:
      sentences = []
      for line in raw_document:
        sentence = self.tokenizer.tokenize(line)
        stats["text_tokens"] += len(sentence.ids)
        stats["unk_tokens"] += sentence.ids.count(self.unk_id)
        if sentence.ids:
          sentences.append(sentence)
      if sentences:
        documents.append(sentences)
        stats["sentences"] += len(sentences)
    stats["documents"] += len(raw_documents)
    stats["segmenter_mismatches"] += self.tokenizer.num_segmenter_mismatches - mismatches_before
    return documents

  def unmasked_instances(self, documents, rng):
    """Instances of one dupe round over the chunk's documents."""
    max_num_tokens = self.config.max_num_tokens()
    if self.config.instance_mode == "contiguous":
      yield from instances.contiguous_instances(
          documents, max_num_tokens, self.config.short_seq_prob, rng, self.special)
      return
    for document_index in range(len(documents)):
      yield from instances.sentence_pair_instances(
          documents, document_index, max_num_tokens, self.config.short_seq_prob, rng, self.special)

  def process(self, task):
    """ChunkTask -> ChunkResult with the records in their final (shuffled) order and counters."""
    config = self.config
    stats = collections.Counter()
    documents = self.tokenize_documents(task.documents, stats)
    records = []
    for dupe_round in range(config.dupe_factor):
      rng = chunk_rng(config.random_seed, task.index, f"round{dupe_round}")
      # Masking draws from the same generator right after each instance, as in the original.
      for unmasked in self.unmasked_instances(documents, rng):
        masked = self.masker.mask(unmasked.ids, unmasked.continuation, rng)
        records.append(self.encoder.encode(masked.input_ids, unmasked.segment_ids, masked.positions,
                                           masked.label_ids, unmasked.is_random_next))
        _count_instance(stats, unmasked, masked)
    chunk_rng(config.random_seed, task.index, "order").shuffle(records)
    return ChunkResult(task.index, records, stats)


def _count_instance(stats, unmasked, masked):
  num_special = 3 if unmasked.segment_ids[-1] == 1 else 2  # [CLS] A [SEP] B [SEP] or [CLS] A [SEP]
  stats["instances"] += 1
  stats["instance_tokens"] += len(unmasked.ids)
  stats["maskable_tokens"] += len(unmasked.ids) - num_special
  stats["random_next"] += unmasked.is_random_next
  counts = masked.counts
  stats["masked_tokens"] += counts.masked
  stats["mask_token"] += counts.mask_token
  stats["random_token"] += counts.random_token
  stats["kept_token"] += counts.kept
  stats["masked_words"] += counts.words
  stats["whole_words_masked"] += counts.multi_token_words


# The processor of a worker process: inherited from the parent under fork, built once under spawn.
_PROCESSOR = None


def init_worker(config):
  global _PROCESSOR
  if _PROCESSOR is None or _PROCESSOR.config != config:
    _PROCESSOR = ChunkProcessor(config)


def set_processor(processor):
  """Makes `processor` the one that forked workers (and the in-process path) use."""
  global _PROCESSOR
  _PROCESSOR = processor


def process_in_worker(task):
  return _PROCESSOR.process(task)
