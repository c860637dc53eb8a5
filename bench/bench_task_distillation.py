"""What the teacher costs in task-specific distillation: in-graph teacher against cached logits.

Times, on one fixed batch, the classifier's training step as run_classifier builds it
(finetune/core/model.py with the classification head):
  student          plain fine-tuning step (what a step costs when the teacher's logits are cached)
  student+teacher  the same step with the frozen teacher in the graph (soft targets only)
  +transfer        the same with feature-map and attention transfer (needs in-graph hidden states)
  teacher forward  one batch of teacher logits (what caching costs, once per training example)
and prints the cost of a run of `--epochs` over the data both ways, per training example.

  python bench/bench_task_distillation.py [--student_config config/quickstart/small_student.json]
      [--teacher_config config/quickstart/small_teacher.json] [--seq 48] [--batch 32] [--steps 5] [--rounds 6]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from finetune.classification import head as classification_head  # noqa: E402
from finetune.core import model as model_lib  # noqa: E402
from finetune.core.distillation_settings import TaskDistillation  # noqa: E402
from finetune.core.task_distillation import LossWeights  # noqa: E402
from mobilebert.config import BertConfig  # noqa: E402

NUM_LABELS = 2


def _features(vocab_size, batch, seq):
  rng = np.random.RandomState(0)
  return {"input_ids": tf.constant(rng.randint(1, vocab_size, [batch, seq]).astype(np.int32)),
          "input_mask": tf.ones([batch, seq], tf.int32),
          "segment_ids": tf.zeros([batch, seq], tf.int32),
          "label_ids": tf.constant(rng.randint(0, NUM_LABELS, [batch]).astype(np.int32)),
          "is_real_example": tf.ones([batch], tf.int32)}


def _head(config):
  return classification_head.head(NUM_LABELS, config)


def teacher_checkpoint(config, batch, seq, directory):
  """A randomly initialized classifier checkpoint of `config` (the weights do not change the cost)."""
  with tf.Graph().as_default():
    model_lib.create_model(model_lib.EncoderSettings(config), _head(config), False,
                           _features(config.vocab_size, batch, seq))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      return tf.train.Saver().save(session, os.path.join(directory, "teacher.ckpt"))


class Timed:
  """One graph in its own session, run a step at a time."""

  def __init__(self, fetch_builder, warmup=3):
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.set_random_seed(0)
      self.fetch = fetch_builder()
      self.session = tf.Session()
      self.session.run(tf.global_variables_initializer())
    for _ in range(warmup):
      self.session.run(self.fetch)
    self.times = []

  def run(self, steps):
    for _ in range(steps):
      start = time.perf_counter()
      self.session.run(self.fetch)
      self.times.append(time.perf_counter() - start)

  def close(self):
    self.session.close()
    return float(np.median(self.times))


def interleaved(builders, steps, rounds):
  """{name: median seconds}, the graphs taking turns for `rounds` rounds so load drift hits all alike."""
  timed = {name: Timed(builder) for name, builder in builders.items()}
  for _ in range(rounds):
    for model in timed.values():
      model.run(steps)
  return {name: model.close() for name, model in timed.items()}


def train_step(student, batch, seq, distillation=None):
  def build():
    tf.train.get_or_create_global_step()
    train = model_lib.TrainSettings(
        init_checkpoint=None, skip_mismatched_variables=False, learning_rate=1e-4,
        num_train_steps=10 ** 6, num_warmup_steps=0, optimizer="adamw", weight_decay_rate=0.01,
        use_tpu=False, distillation=distillation)
    model_fn = model_lib.model_fn_builder(model_lib.EncoderSettings(student), _head(student), train)
    spec = model_fn(_features(student.vocab_size, batch, seq), None, tf.estimator.ModeKeys.TRAIN, {})
    return spec.train_op
  return build


def teacher_forward(teacher, batch, seq):
  def build():
    return model_lib.create_model(model_lib.EncoderSettings(teacher), _head(teacher), False,
                                  _features(teacher.vocab_size, batch, seq)).logits
  return build


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--student_config", default="config/quickstart/small_student.json")
  parser.add_argument("--teacher_config", default="config/quickstart/small_teacher.json")
  parser.add_argument("--seq", type=int, default=48)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=6)
  parser.add_argument("--epochs", type=float, default=3.0, help="passes over the training data")
  args = parser.parse_args(argv)
  student = BertConfig.from_json_file(args.student_config)
  teacher = BertConfig.from_json_file(args.teacher_config)
  transfer = student.hidden_size == teacher.hidden_size and \
      student.num_attention_heads == teacher.num_attention_heads
  with tempfile.TemporaryDirectory() as directory:
    checkpoint = teacher_checkpoint(teacher, args.batch, args.seq, directory)
    soft = TaskDistillation(teacher, checkpoint, LossWeights(0.5, 1.0))
    builders = {"student": train_step(student, args.batch, args.seq),
                "student+teacher": train_step(student, args.batch, args.seq, soft)}
    if transfer:
      both = soft._replace(weights=LossWeights(0.5, 1.0, 1.0, 1.0))
      builders["+transfer"] = train_step(student, args.batch, args.seq, both)
    builders["teacher forward"] = teacher_forward(teacher, args.batch, args.seq)
    rows = interleaved(builders, args.steps, args.rounds)
  print(f"batch {args.batch}, seq {args.seq}: median of {args.rounds} x {args.steps} steps, "
        "graphs interleaved")
  for name, seconds in rows.items():
    print(f"{name:16s} {seconds * 1000:8.1f} ms/step  {args.batch / seconds:8.1f} examples/s")
  # Per training example over the run: in-graph pays the teacher every epoch, caching once.
  in_graph = (rows["student+teacher"]) / args.batch
  cached = (rows["student"] + rows["teacher forward"] / args.epochs) / args.batch
  print(f"per training example over {args.epochs:g} epochs: in-graph {in_graph * 1000:.2f} ms, "
        f"cached {cached * 1000:.2f} ms ({in_graph / cached:.2f}x)")
  return rows


if __name__ == "__main__":
  main()
