"""Fine-tuning step and inference latency: our TensorFlow graph vs transformers' PyTorch MobileBERT.

Same architecture (default config/student_base_f2.json), same sequence length, same CPU, measured
interleaved in one process (rounds alternate between the two), median over rounds.

  python bench/bench_model.py [--config config/student_base_f2.json] [--seq 128] [--rounds 5]
  python bench/bench_model.py --memory     # peak RSS of a fine-tuning run, each framework alone

Prints a markdown table with the machine, per-step times, throughput, the ratio ours/peer, and our
achieved GFLOP/s as a fraction of the machine's measured matmul peak.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_flops_per_sequence(config, seq):
  """Multiply-adds x 2 of the encoder's dense layers and attention for one sequence (no embeddings)."""
  from mobilebert import summary
  flops = 0
  for name, shape in summary.model_variables(config):
    if name.endswith("/kernel") and name.startswith("bert/") and "pooler" not in name:
      flops += 2 * shape[0] * shape[1] * seq
  flops += config.num_hidden_layers * 2 * 2 * seq * seq * config.inner_size
  return flops


class TFModel:
  """Our graph: BertModel + classifier head, AdamW train op, and an inference graph."""

  def __init__(self, config, seq, batch, training, xla=False):
    import tensorflow.compat.v1 as tf
    from mobilebert import modeling, optimization
    self.graph = tf.Graph()
    with self.graph.as_default():
      tf.set_random_seed(0)
      self.ids = tf.placeholder(tf.int32, [batch, seq])
      self.mask = tf.placeholder(tf.int32, [batch, seq])
      self.labels = tf.placeholder(tf.int32, [batch])
      model = modeling.BertModel(config, training, self.ids, self.mask)
      pooled = model.get_pooled_output()
      weights = tf.get_variable("output_weights", [2, config.hidden_size],
                                initializer=tf.truncated_normal_initializer(stddev=0.02))
      bias = tf.get_variable("output_bias", [2], initializer=tf.zeros_initializer())
      logits = tf.matmul(pooled, weights, transpose_b=True) + bias
      if training:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=self.labels, logits=logits))
        self.fetch = optimization.create_optimizer(loss, 5e-5, 1000, 100)
      else:
        self.fetch = logits
      session_config = tf.ConfigProto()
      if xla:
        session_config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
      self.session = tf.Session(config=session_config)
      self.session.run(tf.global_variables_initializer())

  def step(self, ids, mask, labels):
    self.session.run(self.fetch, {self.ids: ids, self.mask: mask, self.labels: labels})


class TorchModel:
  """transformers' MobileBertForSequenceClassification with the same config."""

  def __init__(self, config, training):
    import torch
    from transformers import MobileBertConfig, MobileBertForSequenceClassification
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    hf_config = MobileBertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, embedding_size=config.embedding_size,
        trigram_input=config.trigram_input, use_bottleneck=config.use_bottleneck,
        intra_bottleneck_size=config.intra_bottleneck_size,
        use_bottleneck_attention=config.use_bottleneck_attention,
        key_query_shared_bottleneck=config.key_query_shared_bottleneck,
        num_feedforward_networks=config.num_feedforward_networks,
        normalization_type=config.normalization_type,
        classifier_activation=config.classifier_activation, num_labels=2)
    self.torch = torch
    self.model = MobileBertForSequenceClassification(hf_config)
    self.training = training
    self.model.train(training)
    if training:
      self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-5, weight_decay=0.01)

  def step(self, ids, mask, labels):
    torch = self.torch
    ids_t = torch.from_numpy(ids.astype(np.int64))
    mask_t = torch.from_numpy(mask.astype(np.int64))
    if self.training:
      out = self.model(input_ids=ids_t, attention_mask=mask_t,
                       labels=torch.from_numpy(labels.astype(np.int64)))
      out.loss.backward()
      torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
      self.optimizer.step()
      self.optimizer.zero_grad()
    else:
      with torch.inference_mode():
        self.model(input_ids=ids_t, attention_mask=mask_t)


class TFLiteModel:
  """Our TFLite export (float32 or dynamic-range int8) of a freshly initialized checkpoint."""

  def __init__(self, config, seq, variant, work_dir):
    import tensorflow.compat.v1 as tf
    from mobilebert import modeling
    from mobilebert.export import tflite, tflite_eval
    prefix = os.path.join(work_dir, "model.ckpt")
    if not tf.io.gfile.exists(prefix + ".index"):
      with tf.Graph().as_default():
        modeling.BertModel(config, False, tf.zeros([1, seq], tf.int32))
        with tf.Session() as session:
          session.run(tf.global_variables_initializer())
          tf.train.Saver().save(session, prefix)
    path = os.path.join(work_dir, f"model.{variant}.tflite")
    tflite.export_tflite(config, prefix, path, variant, seq_length=seq, overwrite=True)
    self.size = os.path.getsize(path)
    self.runner = tflite_eval.TFLiteRunner(path, num_threads=os.cpu_count())

  def step(self, ids, mask, labels):
    del labels
    self.runner.run({"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)},
                    batch_size=len(ids))


def batch_of(config, batch, seq, rng):
  ids = rng.randint(1, config.vocab_size, size=(batch, seq)).astype(np.int32)
  return ids, np.ones((batch, seq), np.int32), rng.randint(0, 2, size=batch).astype(np.int32)


def interleaved(ours, peer, data, steps, rounds):
  """Median seconds per step of each, alternating rounds so both see the same machine state."""
  for model in (ours, peer):
    for _ in range(2):
      model.step(*data)  # warm-up: graph optimization, allocator, threads
  times = {"ours": [], "peer": []}
  for _ in range(rounds):
    for key, model in (("ours", ours), ("peer", peer)):
      start = time.perf_counter()
      for _ in range(steps):
        model.step(*data)
      times[key].append((time.perf_counter() - start) / steps)
  return {k: statistics.median(v) for k, v in times.items()}


def run_speed(args):
  from mobilebert.config import BertConfig
  config = BertConfig.from_json_file(args.config)
  rng = np.random.RandomState(0)
  peak = machine.tf_matmul_peak_gflops()
  flops = forward_flops_per_sequence(config, args.seq)
  rows = []
  cases = [("fine-tuning step", 32, True, 3), ("inference", 1, False, 20), ("inference", 32, False, 3)]
  for label, batch, training, steps in cases:
    ours = TFModel(config, args.seq, batch, training, xla=args.xla)
    peer = TorchModel(config, training)
    t = interleaved(ours, peer, batch_of(config, batch, args.seq, rng), steps, args.rounds)
    achieved = (3 if training else 1) * flops * batch / t["ours"] / 1e9
    rows.append((f"{label}, batch {batch}", t["ours"], t["peer"], batch, achieved / peak))
  if args.tflite:
    import tempfile
    with tempfile.TemporaryDirectory() as work_dir:
      peer = TorchModel(config, False)
      for variant in ("float32", "dynamic_int8"):
        ours = TFLiteModel(config, args.seq, variant, work_dir)
        t = interleaved(ours, peer, batch_of(config, 1, args.seq, rng), 20, args.rounds)
        rows.append((f"inference, batch 1, TFLite {variant} ({ours.size / 2**20:.0f} MB)",
                     t["ours"], t["peer"], 1, flops / t["ours"] / 1e9 / peak))
  print(f"\n{machine.describe()}")
  print(f"config {os.path.basename(args.config)}, sequence length {args.seq}, float32, "
        f"{'XLA' if args.xla else 'no XLA'}; matmul peak {peak:.1f} GFLOP/s; "
        f"forward {flops / 1e9:.2f} GFLOP/sequence\n")
  print("| case | ours ms | peer ms | ours seq/s | peer seq/s | speed-up (peer time / ours) | ours % of peak |")
  print("|---|---|---|---|---|---|---|")
  for label, ours_t, peer_t, batch, fraction in rows:
    print(f"| {label} | {ours_t * 1e3:.1f} | {peer_t * 1e3:.1f} | {batch / ours_t:.1f} | "
          f"{batch / peer_t:.1f} | {peer_t / ours_t:.2f}x | {100 * fraction:.0f}% |")


def run_memory_child(args):
  from mobilebert.config import BertConfig
  config = BertConfig.from_json_file(args.config)
  data = batch_of(config, 32, args.seq, np.random.RandomState(0))
  model = TFModel(config, args.seq, 32, True) if args.child == "ours" else TorchModel(config, True)
  for _ in range(3):
    model.step(*data)
  print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_memory(args):
  result = {}
  for who in ("ours", "peer"):
    out = subprocess.run([sys.executable, __file__, "--child", who, "--config", args.config,
                          "--seq", str(args.seq)], capture_output=True, text=True, check=True)
    result[who] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
  print(f"\n{machine.describe()}\nfine-tuning batch 32, sequence {args.seq}, peak RSS of the whole "
        "process after 3 steps\n")
  print("| | ours | peer |\n|---|---|---|")
  print(f"| peak RSS MB | {result['ours']:.0f} | {result['peer']:.0f} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  here = os.path.dirname(os.path.abspath(__file__))
  parser.add_argument("--config", default=os.path.join(here, "..", "config", "student_base_f2.json"))
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--xla", action="store_true", help="compile our graph with XLA (jit ON_1)")
  parser.add_argument("--memory", action="store_true")
  parser.add_argument("--tflite", action="store_true",
                      help="also time batch-1 inference of our float32 and int8 TFLite exports")
  parser.add_argument("--child", choices=["ours", "peer"], help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    run_memory_child(args)
  elif args.memory:
    run_memory(args)
  else:
    run_speed(args)


if __name__ == "__main__":
  main()
