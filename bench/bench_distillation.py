"""A distillation step, ours vs the same computation with transformers: teacher forward, student
forward/backward with the layer-wise transfer losses, and the optimizer update.

The step is one step of the progressive knowledge transfer (run_pretraining.py --layer_wise_warmup),
the only phase with the transfer losses (the main round's distillation is the masked-LM loss against
soft labels, without them). Ours is that phase's graph exactly as run_pretraining builds it: the
settings of the release recipe (run_scripts/run_pretraining.sh) go through pretrain/schedule.py's
model_options / train_options into pretraining_model_fn.model_fn_builder, whose PretrainingModel
computes the losses with pretrain/distillation.py; the global step stays in stage 0. Every layer's
losses are computed and gated by the stage, so the step costs the same in every stage.

The peer (bench/peer.py Distillation): transformers BertModel teacher (eval, no grad) and
MobileBertModel student with output_hidden_states / output_attentions, the same four losses written
in torch on the same layers with the same gates and factors, gradient clipping, torch AdamW.

  python bench/bench_distillation.py [--student_config config/student_base_f2.json]
      [--teacher_config config/roberta_wwm_ext.json] [--seq 128] [--batch 8] [--rounds 5]
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(HERE, "..", "config")
# run_scripts/run_pretraining.sh: hidden, attention, beta, gamma distill factors and the rate.
RELEASE_FACTORS = (100.0, 1.0, 5000.0, 5.0)
RELEASE_LEARNING_RATE = 1e-4
MAX_PREDICTIONS_PER_SEQ = 20  # the masked-LM features the graph takes (unused by the warm-up loss)
STEPS_PER_STAGE = 10 ** 6  # keeps the benchmark in stage 0


def warmup_settings(student_config_file, teacher_config_file, seq, batch, factors, learning_rate):
  """PretrainingSettings of a --layer_wise_warmup run with these configs (nothing is read/written)."""
  from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
  from mobilebert.run_config import RunSettings  # pylint: disable=g-import-not-at-top
  from pretrain.pretraining_settings import PretrainingSettings  # pylint: disable=g-import-not-at-top
  student = BertConfig.from_json_file(student_config_file)
  hidden, attention, beta, gamma = factors
  return PretrainingSettings(
      bert_config=student, bert_config_file=student_config_file, input_files=[],
      run=RunSettings(output_dir=tempfile.gettempdir()),
      bert_teacher_config=BertConfig.from_json_file(teacher_config_file),
      bert_teacher_config_file=teacher_config_file, do_train=True, max_seq_length=seq,
      max_predictions_per_seq=MAX_PREDICTIONS_PER_SEQ, train_batch_size=batch,
      learning_rate=learning_rate, layer_wise_warmup=True,
      num_distill_steps=student.num_hidden_layers * STEPS_PER_STAGE, hidden_distill_factor=hidden,
      attention_distill_factor=attention, beta_distill_factor=beta, gamma_distill_factor=gamma)


class Ours:
  """The warm-up phase's training graph from run_pretraining's own functions, fed one fixed batch."""

  def __init__(self, student_config_file, teacher_config_file, seq, batch, factors, learning_rate,
               xla=False, threads=None):
    import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
    from pretrain import schedule  # pylint: disable=g-import-not-at-top
    from pretrain.pretraining_model_fn import model_fn_builder  # pylint: disable=g-import-not-at-top
    settings = warmup_settings(student_config_file, teacher_config_file, seq, batch, factors,
                               learning_rate)
    phase = schedule.plan_phases(settings)[0]
    assert phase.kind == "progressive", phase
    model_fn = model_fn_builder(schedule.model_options(settings, phase.kind),
                                schedule.train_options(settings, phase))
    ids, mask, _ = compare.batch_of(settings.bert_config.vocab_size, batch, seq)
    graph = tf.Graph()
    with graph.as_default():
      tf.set_random_seed(0)
      features = {name: tf.placeholder(tf.int32, [batch, seq], name)
                  for name in ("input_ids", "input_mask", "segment_ids")}
      features.update(
          masked_lm_positions=tf.zeros([batch, MAX_PREDICTIONS_PER_SEQ], tf.int32),
          masked_lm_ids=tf.zeros([batch, MAX_PREDICTIONS_PER_SEQ], tf.int32),
          masked_lm_weights=tf.zeros([batch, MAX_PREDICTIONS_PER_SEQ], tf.float32),
          next_sentence_labels=tf.zeros([batch, 1], tf.int32))
      spec = model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {})
      self.fetch = spec.train_op
      self.loss = spec.loss
      self.session = tf.Session(config=compare.session_config(threads, xla))
      self.session.run(tf.global_variables_initializer())
    self.feed = {features["input_ids"]: ids, features["input_mask"]: mask,
                 features["segment_ids"]: 0 * ids}
    variables = compare.graph_variables(graph)
    teacher_flops = compare.forward_flops_per_sequence(settings.bert_teacher_config, seq, variables,
                                                       scope="teacher/bert/")
    student_flops = compare.forward_flops_per_sequence(settings.bert_config, seq, variables)
    # Teacher forward only; student forward + backward (~ 2 x forward).
    self.info = {"flops_per_step": batch * (teacher_flops + 3 * student_flops)}

  def step(self):
    self.session.run(self.fetch, self.feed)

  def close(self):
    self.session.close()


def sides(args):
  factors = list(RELEASE_FACTORS)
  ours = compare.Side("bench_distillation:Ours", dict(
      student_config_file=args.student_config, teacher_config_file=args.teacher_config,
      seq=args.seq, batch=args.batch, factors=factors, learning_rate=RELEASE_LEARNING_RATE,
      xla=args.xla, threads=args.threads))
  peer = compare.Side("peer:Distillation", dict(
      student_fields=compare.hf_fields(args.student_config),
      teacher_fields=compare.hf_fields(args.teacher_config),
      seq=args.seq, batch=args.batch, factors=factors, learning_rate=RELEASE_LEARNING_RATE,
      threads=args.threads))
  return ours, peer


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--student_config", default=os.path.join(CONFIG_DIR, "student_base_f2.json"))
  parser.add_argument("--teacher_config", default=os.path.join(CONFIG_DIR, "roberta_wwm_ext.json"))
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps", type=int, default=1, help="steps per round")
  parser.add_argument("--xla", action="store_true",
                      help="compile our graph with XLA (auto-clustering, on the CPU too)")
  parser.add_argument("--threads", type=int, default=None,
                      help="threads of each side (TensorFlow intra/inter-op, torch); default: all")
  parser.add_argument("--peak_size", type=int, default=2048,
                      help="matrix size of the matmul-peak measurement")
  args = parser.parse_args(argv)
  for flag in ("student_config", "teacher_config"):
    if not os.path.isfile(getattr(args, flag)):
      parser.error(f"--{flag} {getattr(args, flag)}: no such file")
  if args.xla:
    compare.enable_xla_on_cpu()
  with compare.Workers(reuse=True) as workers:
    peak = compare.matmul_peak_gflops(workers, args.peak_size, args.threads)
    ours, peer = sides(args)
    result = compare.run_case(workers, f"distillation step, batch {args.batch}", ours, peer,
                              args.batch, args.steps, args.rounds,
                              compare.warmup_steps(args.xla, default=1))
  print(compare.report(
      f"student {os.path.basename(args.student_config)}, teacher "
      f"{os.path.basename(args.teacher_config)}, sequence length {args.seq}, float32, "
      f"{'XLA' if args.xla else 'no XLA'}, {args.threads or 'all'} thread(s); progressive-transfer "
      f"step (factors {RELEASE_FACTORS}, AdamW lr {RELEASE_LEARNING_RATE:g}); peer: transformers "
      f"BertModel + MobileBertModel (PyTorch); medians of {args.rounds} alternating rounds",
      [result], peak))


if __name__ == "__main__":
  main()
