"""One place that turns run settings into an Estimator: TPU, one device, several GPUs or workers.

Model functions return `TPUEstimatorSpec`s (host-call summaries work on TPU, plain ones elsewhere).
On TPU and on a single device they run under `TPUEstimator` (use_tpu=False is its CPU/GPU fallback);
with `num_gpus > 1` or a multi-worker `TF_CONFIG` they run under a plain Estimator with
MirroredStrategy / MultiWorkerMirroredStrategy, the global batch split evenly across replicas.
Entry points call `Runner.train/evaluate/predict` with global batch sizes and never build estimators
themselves; `Runner.train` resumes only from a checkpoint that reads and fits (checkpoint_resume).
"""

import dataclasses
import datetime
import json
import os
import time
from typing import Optional

import tensorflow.compat.v1 as tf

from mobilebert import atomic_io
from mobilebert import checkpoint
from mobilebert import checkpoint_resume
from mobilebert import cli


@dataclasses.dataclass
class RunSettings:
  """Typed view of the run flags (see mobilebert.flags.define_run_flags)."""
  output_dir: str
  use_tpu: bool = False
  tpu_name: Optional[str] = None
  tpu_zone: Optional[str] = None
  gcp_project: Optional[str] = None
  master: Optional[str] = None
  num_tpu_cores: int = 8
  iterations_per_loop: int = 1000
  save_checkpoints_steps: int = 1000
  keep_checkpoint_max: int = 5
  save_summary_steps: int = 100
  num_gpus: int = 0
  precision: str = "float32"
  rand_seed: Optional[int] = 12345
  allow_changed_settings: bool = False  # resume under other training settings (resume_settings.py)
  # Explicit replica devices for MirroredStrategy, e.g. ("/cpu:0", "/cpu:1") to test replication on a
  # machine without GPUs (CPU devices beyond the first are virtual). Not a flag; None uses --num_gpus.
  devices: Optional[tuple] = None

  @classmethod
  def from_flags(cls, flag_values):
    kwargs = {f.name: getattr(flag_values, f.name, f.default) for f in dataclasses.fields(cls)}
    if not kwargs["output_dir"]:
      raise cli.FlagError("--output_dir is required")
    if kwargs["use_tpu"] and not kwargs["tpu_name"] and not kwargs["master"]:
      # Inside a Cloud TPU VM the resolver finds the local TPU with no name.
      tf.logging.info("--use_tpu without --tpu_name: using the TPU the environment provides")
    return cls(**kwargs)

  @property
  def compute_dtype(self):
    return {"float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}[self.precision]


def multi_worker_count():
  """Number of workers in TF_CONFIG (1 when unset)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  cluster = config.get("cluster", {})
  return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief():
  """True unless TF_CONFIG makes this process a worker other than the chief (or worker 0 without
  one), or a parameter server / evaluator: the process that writes a run's own files."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  task = config.get("task") or {}
  kind, index = task.get("type"), int(task.get("index", 0))
  if kind in (None, "chief"):
    return True
  return kind == "worker" and index == 0 and not config.get("cluster", {}).get("chief")


class Runner:
  """Builds the right estimator for the settings and runs train / evaluate / predict."""

  def __init__(self, settings, model_fn, params=None):
    self.settings = settings
    self.model_fn = model_fn
    self.params = dict(params or {})
    if settings.num_gpus or any("gpu" in d.lower() for d in settings.devices or ()):
      # GPU kernels (atomic adds in reductions and scatters, cuDNN algorithm choice) differ from run
      # to run unless asked not to; CPU kernels give the same bits for the same thread count.
      tf.config.experimental.enable_op_determinism()
    self.strategy = self._strategy()
    self.num_replicas = self.strategy.num_replicas_in_sync if self.strategy else 1
    if multi_worker_count() <= 1:  # with several workers the chief may be saving right now
      atomic_io.remove_stale_checkpoint_temps(settings.output_dir)

  def _strategy(self):
    if self.settings.use_tpu:
      return None
    if multi_worker_count() > 1:
      return tf.distribute.experimental.MultiWorkerMirroredStrategy()
    if self.settings.devices and len(self.settings.devices) > 1:
      return tf.distribute.MirroredStrategy(devices=list(self.settings.devices))
    if self.settings.num_gpus > 1:
      devices = [f"/gpu:{i}" for i in range(self.settings.num_gpus)]
      return tf.distribute.MirroredStrategy(devices=devices)
    return None

  def _session_config(self):
    cpus = sum(1 for d in self.settings.devices or () if "cpu" in d.lower())
    if cpus > 1:
      # Sessions see one CPU device unless asked for more; the extra ones are virtual.
      return tf.ConfigProto(allow_soft_placement=True, device_count={"CPU": cpus})
    return tf.ConfigProto(allow_soft_placement=True)

  def estimator(self, train_batch_size=1, eval_batch_size=1, predict_batch_size=1):
    s = self.settings
    if self.strategy is None:
      resolver = None
      if s.use_tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            s.tpu_name, zone=s.tpu_zone, project=s.gcp_project)
      config = tf.estimator.tpu.RunConfig(
          cluster=resolver, master=s.master, model_dir=s.output_dir,
          save_checkpoints_steps=s.save_checkpoints_steps, keep_checkpoint_max=s.keep_checkpoint_max,
          save_summary_steps=s.save_summary_steps,
          tf_random_seed=s.rand_seed, session_config=self._session_config(),
          # TPUEstimator logs every ceil(log_step_count_steps / iterations_per_loop) loops; off TPU a
          # loop is one step, so without this it would log loss and steps/s at every step.
          log_step_count_steps=100 if s.use_tpu else 100 * s.iterations_per_loop,
          tpu_config=tf.estimator.tpu.TPUConfig(
              iterations_per_loop=s.iterations_per_loop, num_shards=s.num_tpu_cores,
              per_host_input_for_training=tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2))
      return tf.estimator.tpu.TPUEstimator(
          use_tpu=s.use_tpu, model_fn=self.model_fn, config=config, params=self.params,
          train_batch_size=train_batch_size, eval_batch_size=eval_batch_size,
          predict_batch_size=predict_batch_size)
    config = tf.estimator.RunConfig(
        model_dir=s.output_dir, save_checkpoints_steps=s.save_checkpoints_steps,
        keep_checkpoint_max=s.keep_checkpoint_max, save_summary_steps=s.save_summary_steps,
        tf_random_seed=s.rand_seed, session_config=self._session_config(), train_distribute=self.strategy,
        eval_distribute=self.strategy)

    def model_fn(features, labels, mode, params):
      spec = self.model_fn(features, labels, mode, params)
      return spec.as_estimator_spec() if hasattr(spec, "as_estimator_spec") else spec

    return tf.estimator.Estimator(model_fn=model_fn, config=config, params=self.params)

  def _input_fn(self, input_fn, global_batch_size):
    """Under a strategy each replica reads global/replicas examples; TPUEstimator splits itself."""
    if self.strategy is None:
      return input_fn
    if global_batch_size % self.num_replicas:
      raise cli.FlagError(f"batch size {global_batch_size} is not divisible by the "
                          f"{self.num_replicas} replicas")
    per_replica = global_batch_size // self.num_replicas

    def replica_input_fn(params, input_context=None):
      dataset = input_fn(dict(params, batch_size=per_replica))
      # Several workers each build the same pipeline; each keeps every N-th batch, so that no two
      # workers train on the same examples.
      if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
      return dataset

    return replica_input_fn

  def train(self, input_fn, max_steps, batch_size, hooks=None, saving_listeners=None):
    """Trains to max_steps, resuming from output_dir's newest readable checkpoint when it has one
    (checkpoint_resume: unreadable ones are moved aside, another model's stop the run);
    saving_listeners run after each checkpoint is written."""
    if multi_worker_count() <= 1:  # with several workers, each would move the same files
      checkpoint_resume.recover_latest(self.settings.output_dir)
    hooks = list(hooks or []) + [self._fit_check(None)]
    estimator = self.estimator(train_batch_size=batch_size)
    input_fn = self._input_fn(input_fn, batch_size)
    if self.strategy is not None and multi_worker_count() > 1:
      # The Estimator trains on several workers only through train_and_evaluate (its
      # estimator.train refuses); every worker trains, an "evaluator" task (if any) evaluates.
      tf.estimator.train_and_evaluate(
          estimator, tf.estimator.TrainSpec(input_fn, max_steps=max_steps, hooks=hooks,
                                            saving_listeners=saving_listeners),
          tf.estimator.EvalSpec(input_fn, steps=1))
      return estimator
    return estimator.train(input_fn, max_steps=max_steps, hooks=hooks,
                           saving_listeners=saving_listeners)

  def evaluate(self, input_fn, steps, batch_size, checkpoint_path=None, name=None):
    estimator = self.estimator(eval_batch_size=batch_size)
    return estimator.evaluate(self._input_fn(input_fn, batch_size), steps=steps,
                              checkpoint_path=checkpoint_path, name=name,
                              hooks=[self._fit_check(checkpoint_path)])

  def predict(self, input_fn, batch_size, checkpoint_path=None):
    estimator = self.estimator(predict_batch_size=batch_size)
    return estimator.predict(self._input_fn(input_fn, batch_size), checkpoint_path=checkpoint_path,
                             hooks=[self._fit_check(checkpoint_path)], yield_single_examples=True)

  def _fit_check(self, checkpoint_path):
    """Stops before restoring a checkpoint (default: output_dir's latest) of another model."""
    return checkpoint_resume.FitCheckHook(self.settings.output_dir, checkpoint_path)


def resume_step(output_dir):
  """The global step a training run in `output_dir` resumes from (0 for a fresh run).

  Sets an unreadable newest checkpoint aside first (checkpoint_resume.recover_latest, as Runner.train
  does), so that the input position computed from this step is the one of the checkpoint restored.
  """
  if multi_worker_count() <= 1:
    checkpoint_resume.recover_latest(output_dir)
  return latest_step(output_dir)


def latest_step(output_dir):
  """Global step of the newest checkpoint in `output_dir` (0 when there is none)."""
  latest = tf.train.latest_checkpoint(output_dir) if tf.io.gfile.isdir(output_dir) else None
  if latest is None:
    return 0
  # Through the checkpoint module, so that an unreadable checkpoint is named.
  return int(checkpoint.read_checkpoint_float32(latest, ["global_step"])["global_step"])


class ProgressHook(tf.train.SessionRunHook):
  """Logs `<name> step S/M (P%): X steps/s, Y examples/s, ETA T` every `every_n_steps` global steps.

  Rates come from the global step, so they hold on TPU too, where one session run is a loop of
  iterations_per_loop steps. The first interval includes graph warm-up and reads slower; the ETA uses
  the average since the session started.
  """

  def __init__(self, batch_size, max_steps, every_n_steps=100, name="train"):
    self.batch_size, self.max_steps, self.every_n_steps = batch_size, max_steps, max(1, every_n_steps)
    self.name = name
    self.rates = []  # (step, steps/s, examples/s) of every line logged, for tests and tools

  def begin(self):
    self._global_step = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    del coord
    self._first_step = self._last_step = int(session.run(self._global_step))
    self._start = self._last_time = time.time()

  def after_run(self, run_context, run_values):
    del run_values
    # Read after the run: on TPU one run is iterations_per_loop steps.
    self._maybe_log(int(run_context.session.run(self._global_step)), force=False)

  def end(self, session):
    self._maybe_log(int(session.run(self._global_step)), force=True)

  def _maybe_log(self, step, force):
    steps = step - self._last_step
    if steps <= 0 or (steps < self.every_n_steps and step < self.max_steps and not force):
      return
    now = time.time()
    steps_per_second = steps / max(now - self._last_time, 1e-9)
    average = (step - self._first_step) / max(now - self._start, 1e-9)
    eta = max(self.max_steps - step, 0) / max(average, 1e-9)
    self.rates.append((step, steps_per_second, steps_per_second * self.batch_size))
    tf.logging.info("%s step %d/%d (%.1f%%): %.3f steps/s, %.1f examples/s, ETA %s", self.name, step,
                    self.max_steps, 100.0 * step / max(self.max_steps, 1), steps_per_second,
                    steps_per_second * self.batch_size, datetime.timedelta(seconds=round(eta)))
    self._last_step, self._last_time = step, now
