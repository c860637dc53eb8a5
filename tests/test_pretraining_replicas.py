"""Replicated training matches one device with the same global batch: MirroredStrategy over two CPU
devices (same weights after training, same evaluation loss), and two workers under TF_CONFIG
(MultiWorkerMirroredStrategy, same weights).

Each run is a subprocess: the two logical CPU devices must be configured before TensorFlow
initializes, and each worker is a process of its own.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import ROOT

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf2
cpu = tf2.config.list_physical_devices("CPU")[0]
tf2.config.set_logical_device_configuration(cpu, [tf2.config.LogicalDeviceConfiguration()] * 2)
import tensorflow.compat.v1 as tf
sys.path.insert(0, sys.argv[2])
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings, Runner
from pretrain import pretraining_input
from pretrain.pretraining_model import ModelOptions
from pretrain.pretraining_model_fn import TrainOptions, model_fn_builder
from pretraining_testlib import GOLDEN, STUDENT_CONFIG, random_instances, write_tfrecord

out = sys.argv[1]
data = write_tfrecord(out + "/data.tfrecord", random_instances(16, 16, 4, seed=5))
config = BertConfig.from_json_file(STUDENT_CONFIG).copy(attention_probs_dropout_prob=0.0)
# Ordered reading, so that both runs see the same examples in the same steps.
input_fn = pretraining_input.input_fn_builder([data], 16, 4, is_training=False)
results = {}
for name, devices in (("one", None), ("two", ("/cpu:0", "/cpu:1"))):
  settings = RunSettings(output_dir=f"{out}/{name}", devices=devices, save_checkpoints_steps=100)
  model_fn = model_fn_builder(ModelOptions(config, "mlm"), TrainOptions(1e-3, 10, 2),
                              init_checkpoint=str(GOLDEN / "tiny_student_f2.ckpt"))
  runner = Runner(settings, model_fn)
  runner.train(input_fn, max_steps=3, batch_size=4)
  evaluation = runner.evaluate(input_fn, steps=2, batch_size=4)
  results[name] = {"replicas": runner.num_replicas,
                   "eval": {k: float(v) for k, v in evaluation.items()}}
print("RESULT " + json.dumps(results))
"""


WORKER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[3])
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings, Runner
from pretrain import pretraining_input
from pretrain.pretraining_model import ModelOptions
from pretrain.pretraining_model_fn import TrainOptions, model_fn_builder
from pretraining_testlib import GOLDEN, STUDENT_CONFIG

out = sys.argv[1]
config = BertConfig.from_json_file(STUDENT_CONFIG).copy(attention_probs_dropout_prob=0.0)
input_fn = pretraining_input.input_fn_builder([sys.argv[2]], 16, 4, is_training=False)
model_fn = model_fn_builder(ModelOptions(config, "mlm"), TrainOptions(1e-3, 10, 2),
                            init_checkpoint=str(GOLDEN / "tiny_student_f2.ckpt"))
runner = Runner(RunSettings(output_dir=out + "/workers", save_checkpoints_steps=100), model_fn)
assert runner.num_replicas == 2, runner.num_replicas
runner.train(input_fn, max_steps=3, batch_size=4)
print("TRAINED")
"""


@pytest.fixture(name="one_and_two", scope="module")
def fixture_one_and_two(tmp_path_factory):
  out = tmp_path_factory.mktemp("replicas")
  result = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(ROOT / "tests")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
  lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
  assert lines, result.stderr[-3000:]
  return out, json.loads(lines[0][len("RESULT "):])


def _assert_same_weights(reference, other):
  for name, _ in tf.train.list_variables(str(reference)):
    if name.startswith(("bert/", "cls/")):
      np.testing.assert_allclose(tf.train.load_variable(str(other), name),
                                 tf.train.load_variable(str(reference), name), atol=1e-5,
                                 err_msg=name)


def test_two_replicas_train_like_one_device_with_the_same_global_batch(one_and_two):
  out, results = one_and_two
  assert results["one"]["replicas"] == 1 and results["two"]["replicas"] == 2
  one, two = results["one"]["eval"], results["two"]["eval"]
  assert one["global_step"] == two["global_step"] == 3
  for key in ("loss", "masked_lm_loss", "masked_lm_accuracy"):
    assert abs(one[key] - two[key]) < 1e-4, (key, one, two)
  _assert_same_weights(out / "one", out / "two")


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_train_like_one_device_with_the_same_global_batch(one_and_two):
  out, _ = one_and_two
  workers = [f"localhost:{port}" for port in _free_ports(2)]
  processes = []
  for index in range(2):
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    processes.append(subprocess.Popen(
        [sys.executable, "-c", WORKER, str(out), str(out / "data.tfrecord"), str(ROOT / "tests")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, TF_CONFIG=json.dumps(tf_config))))
  try:
    outputs = [p.communicate(timeout=300) for p in processes]
  finally:
    for p in processes:
      p.kill()
  for p, (stdout, stderr) in zip(processes, outputs):
    assert p.returncode == 0 and "TRAINED" in stdout, stderr[-3000:]
  # Each worker read every other batch of the same pipeline: together, the one device's batches.
  assert tf.train.load_variable(str(out / "workers"), "global_step") == 3
  _assert_same_weights(out / "one", out / "workers")
