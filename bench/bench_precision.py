"""Mixed precision on this CPU: training speed and loss curve of float32 vs bfloat16 (vs float16).

Trains the same masked-LM model from the same initial weights on the same batches (read in order) with
each precision, interleaving timed rounds so that load from other processes hits both alike, and
prints steps/s, examples/s and the loss every `--log_every` steps.

  python bench/bench_precision.py [--bert_config_file config/tiny_bert_zh.json] \
      [--input_file 'output/tiny_pretraining/data/train/tf_examples.tfrecord-*'] [--steps 200]
  python bench/bench_precision.py --bert_config_file config/student_base_f2.json --batch_size 8 \
      --steps 22 --rounds 2 --log_every 5 --learning_rate 1e-4   # NoNorm students diverge at 2e-3

Without --input_file (or when it matches nothing) the batches are random tokens: the speed is
meaningful, the loss curve is not. On CPUs without bfloat16 units (no AVX512-BF16/AMX) bfloat16 is
emulated by TensorFlow and slower than float32; on TPUs and recent CPUs it is faster.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Trainer:
  """One precision's graph and session: masked-LM model, AdamW, a fixed sequence of batches."""

  def __init__(self, config, precision, batches, learning_rate, seed=0):
    import tensorflow.compat.v1 as tf
    from mobilebert import optimization
    from pretrain.pretraining_model import ModelOptions, PretrainingModel
    dtype = {"float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}[precision]
    self.batches = batches
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.set_random_seed(seed)
      self.placeholders = {name: tf.placeholder(tf.float32 if name == "masked_lm_weights"
                                                else tf.int32, value.shape)
                           for name, value in batches[0].items()}
      model = PretrainingModel(ModelOptions(config, "mlm", compute_type=dtype), self.placeholders,
                               is_training=False)
      self.loss = model.total_loss
      self.train_op = optimization.build_train_op(
          self.loss, learning_rate, num_train_steps=100000, num_warmup_steps=0,
          loss_scale=1024.0 if precision == "float16" else None).train_op
      self.session = tf.Session(config=tf.ConfigProto(
          intra_op_parallelism_threads=os.cpu_count(), inter_op_parallelism_threads=1))
      self.session.run(tf.global_variables_initializer())
    self.step = 0

  def run(self, steps):
    """Trains `steps` steps; returns (seconds, [(step, loss)])."""
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
      batch = self.batches[self.step % len(self.batches)]
      _, loss = self.session.run([self.train_op, self.loss],
                                 {self.placeholders[k]: v for k, v in batch.items()})
      self.step += 1
      losses.append((self.step, float(loss)))
    return time.perf_counter() - start, losses


def read_batches(pattern, batch_size, count, seq, predictions, vocab_size):
  """`count` batches from TFRecords matching `pattern` (in order), or random ones."""
  import tensorflow.compat.v1 as tf
  from pretrain import pretraining_input
  files = sorted(tf.io.gfile.glob(pattern)) if pattern else []
  if not files:
    rng = np.random.RandomState(0)
    return [{"input_ids": rng.randint(5, vocab_size, (batch_size, seq)).astype(np.int32),
             "input_mask": np.ones((batch_size, seq), np.int32),
             "segment_ids": np.zeros((batch_size, seq), np.int32),
             "masked_lm_positions": rng.randint(0, seq, (batch_size, predictions)).astype(np.int32),
             "masked_lm_ids": rng.randint(5, vocab_size, (batch_size, predictions)).astype(np.int32),
             "masked_lm_weights": np.ones((batch_size, predictions), np.float32),
             "next_sentence_labels": np.zeros((batch_size, 1), np.int32)} for _ in range(count)], False
  with tf.Graph().as_default():
    dataset = pretraining_input.input_fn_builder(files, seq, predictions, is_training=False)(
        {"batch_size": batch_size})
    batch = tf.data.make_one_shot_iterator(dataset).get_next()
    with tf.Session() as session:
      return [session.run(batch) for _ in range(count)], True


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--bert_config_file", default="config/tiny_bert_zh.json")
  parser.add_argument("--input_file", default="output/tiny_pretraining/data/train/tf_examples.tfrecord-*")
  parser.add_argument("--precisions", default="float32,bfloat16")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--max_seq_length", type=int, default=64)
  parser.add_argument("--max_predictions_per_seq", type=int, default=10)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--rounds", type=int, default=4, help="timed rounds per precision, interleaved")
  parser.add_argument("--log_every", type=int, default=25)
  parser.add_argument("--learning_rate", type=float, default=2e-3)
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()

  from mobilebert.config import BertConfig
  config = BertConfig.from_json_file(args.bert_config_file)
  batches, real = read_batches(args.input_file, args.batch_size, args.steps, args.max_seq_length,
                               args.max_predictions_per_seq, config.vocab_size)
  precisions = args.precisions.split(",")
  trainers = {p: Trainer(config, p, batches, args.learning_rate) for p in precisions}
  for trainer in trainers.values():  # first steps compile kernels; not timed, losses kept
    trainer.losses = trainer.run(2)[1]
    trainer.seconds, trainer.timed = 0.0, 0
  per_round = max(1, (args.steps - 2) // args.rounds)
  for _ in range(args.rounds):
    for trainer in trainers.values():
      seconds, losses = trainer.run(per_round)
      trainer.seconds += seconds
      trainer.timed += per_round
      trainer.losses += losses

  report = {"machine": machine.describe(), "config": args.bert_config_file,
            "data": args.input_file if real else "random tokens", "batch_size": args.batch_size,
            "max_seq_length": args.max_seq_length, "results": {}}
  for precision, trainer in trainers.items():
    steps_per_sec = trainer.timed / trainer.seconds
    report["results"][precision] = {
        "steps_per_sec": round(steps_per_sec, 3),
        "examples_per_sec": round(steps_per_sec * args.batch_size, 1),
        "loss": {step: round(loss, 4) for step, loss in trainer.losses
                 if step % args.log_every == 0 or step == trainer.step}}
  if args.json:
    print(json.dumps(report, indent=2))
    return
  print(report["machine"])
  print(f"{args.bert_config_file}, batch {args.batch_size} x {args.max_seq_length}, "
        f"data: {report['data']}")
  steps = sorted(report["results"][precisions[0]]["loss"])
  print("| precision | steps/s | examples/s | " + " | ".join(f"loss@{s}" for s in steps) + " |")
  print("|---" * (3 + len(steps)) + "|")
  for precision, result in report["results"].items():
    print(f"| {precision} | {result['steps_per_sec']} | {result['examples_per_sec']} | "
          + " | ".join(str(result["loss"].get(s, "")) for s in steps) + " |")


if __name__ == "__main__":
  main()
