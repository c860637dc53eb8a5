"""The run config every fine-tuning runner shares, and flag defaults taken from it.

A kind's runner subclasses `FinetuneRunConfig` (keyword-only, each field the flag of the same name),
overriding defaults that differ (run_cmrc2018 trains 2 epochs at 3e-5), and its entry point defines
its flags with `default(Config, name)`, so a default is written once: in the dataclass. The model,
run and quantization flags shared with pretraining are defined in mobilebert/flags.py, the teacher
flags of task-specific distillation in distillation_settings.py.
"""

import dataclasses
from typing import Optional

from finetune.core import distillation_settings
from finetune.core.distillation_settings import DistillationSettings
from finetune.core.model import EncoderSettings, TrainSettings
from mobilebert import cli
from mobilebert import text_encoding
from mobilebert.config import BertConfig
from mobilebert.run_config import RunSettings


@dataclasses.dataclass(kw_only=True)
class FinetuneRunConfig:
  """What every fine-tuning run needs (each field is the flag of the same name)."""
  vocab_file: str
  bert_config_file: str
  run: RunSettings
  init_checkpoint: Optional[str] = None
  skip_mismatched_variables: bool = False
  do_lower_case: bool = True
  max_seq_length: int = 128
  do_train: bool = False
  do_predict: bool = False
  train_batch_size: int = 32
  predict_batch_size: int = 8
  learning_rate: float = 5e-5
  num_train_epochs: float = 3.0
  num_train_steps: int = 0  # > 0 overrides num_train_epochs
  warmup_proportion: float = 0.1
  optimizer: str = "adamw"
  weight_decay_rate: float = 0.01
  use_einsum: bool = True
  tfrecord_dir: Optional[str] = None  # feature cache; default output_dir
  predict_checkpoint: str = "latest"  # "latest" in output_dir, "best" (kinds that score) or a path
  log_every_n_steps: int = 100
  input_encoding: str = text_encoding.DEFAULT  # of the data files (mobilebert/text_encoding.py)
  use_quantized_training: bool = False  # fake-quantized dense layers (mobilebert/quantization.py)
  distillation: DistillationSettings = DistillationSettings()  # a fine-tuned teacher (its own flags)

  @property
  def cache_dir(self):
    return self.tfrecord_dir or self.run.output_dir

  def check_required(self, *names):
    for name in names:
      if not getattr(self, name):
        raise cli.FlagError(f"--{name} is required")

  def check_positive(self, *names):
    for name in names:
      if getattr(self, name) <= 0:
        raise cli.FlagError(f"--{name} must be positive, got {getattr(self, name)}")

  def check_training(self):
    """Checks of the training flags every kind has (and of --input_encoding, which every kind has)."""
    if not text_encoding.known(self.input_encoding):
      raise cli.FlagError(f"--input_encoding={self.input_encoding!r} is not an encoding Python knows "
                          "(e.g. utf-8, gbk, gb18030, big5, utf-16)")
    if self.do_train and self.num_train_steps <= 0 and self.num_train_epochs <= 0:
      raise cli.FlagError("--num_train_epochs (or --num_train_steps) must be positive with --do_train")
    if self.use_quantized_training and self.run.precision != "float32":
      raise cli.FlagError(f"--use_quantized_training fake-quantizes a float32 graph: drop "
                          f"--precision={self.run.precision}")

  def train_steps(self, num_train_records):
    """(num_train_steps, num_warmup_steps): --num_train_steps, or epochs of whole batches (at least 1)."""
    steps = self.num_train_steps or int(
        num_train_records / self.train_batch_size * self.num_train_epochs)
    steps = max(steps, 1)
    return steps, int(steps * self.warmup_proportion)

  def resume_record(self, train_records_key, num_train_steps=None):
    """What defines the fine-tuned weights, keyed by flag (mobilebert/resume_settings.py). The
    training data is the key of its feature cache: the data, vocabulary, lengths and whatever else
    changes the records (finetune/core/records.py). Without `num_train_steps` (not known before the
    data is featurized), all but the step count."""
    record = {f"--{name}": getattr(self, name) for name in (
        "init_checkpoint", "train_batch_size", "learning_rate", "warmup_proportion", "optimizer",
        "weight_decay_rate", "use_quantized_training")}
    record.update({
        "--bert_config_file": BertConfig.from_json_file(self.bert_config_file).to_dict(),
        # The first 16 hex digits: what the cache's file names carry.
        "the training data (its feature cache key)": train_records_key[:16],
        "--rand_seed": self.run.rand_seed,
        "--precision": self.run.precision,
    })
    record.update({f"--{name}": value
                   for name, value in dataclasses.asdict(self.distillation).items()})
    if num_train_steps is not None:
      record["--num_train_steps (or --num_train_epochs)"] = num_train_steps
    return record

  def encoder_settings(self, bert_config):
    return EncoderSettings(
        bert_config=bert_config, use_one_hot_embeddings=self.run.use_tpu, use_einsum=self.use_einsum,
        compute_type=self.run.compute_dtype, use_quantized_training=self.use_quantized_training)

  def train_settings(self, num_train_steps, num_warmup_steps):
    """TrainSettings, with the teacher (checked against the student's config) when one is given."""
    distillation = None
    if self.distillation.enabled:
      distillation = self.distillation.resolve(BertConfig.from_json_file(self.bert_config_file),
                                               self.max_seq_length)
    return TrainSettings(
        init_checkpoint=self.init_checkpoint,
        skip_mismatched_variables=self.skip_mismatched_variables,
        learning_rate=self.learning_rate, num_train_steps=num_train_steps,
        num_warmup_steps=num_warmup_steps, optimizer=self.optimizer,
        weight_decay_rate=self.weight_decay_rate, use_tpu=self.run.use_tpu,
        distillation=distillation)


@dataclasses.dataclass(kw_only=True)
class TFLiteRunConfig(FinetuneRunConfig):
  """A kind whose run can export its checkpoint to int8 TFLite and run a TFLite model (the release's
  flags): what the model is run on differs per kind, the export's numerics do not."""
  lite_model_path: Optional[str] = None  # run this TFLite model (or: where the int8 export goes)
  use_post_quantization: bool = False  # export the run's checkpoint to int8 TFLite and run it
  activation_quantization: bool = False  # that export full-integer (int8 activations), calibrated
  float_softmax: bool = False  # that export with the attention's mask and softmax in float32

  def check_int8_numerics(self):
    """--activation_quantization and --float_softmax each refine the flag before them."""
    if self.activation_quantization and not self.use_post_quantization:
      raise cli.FlagError("--activation_quantization selects the numerics of the "
                          "--use_post_quantization export: add --use_post_quantization")
    if self.float_softmax and not self.activation_quantization:
      raise cli.FlagError("--float_softmax keeps the softmax of the --activation_quantization "
                          "export in float32: add --use_post_quantization --activation_quantization")


@dataclasses.dataclass(kw_only=True)
class ScoredRunConfig(TFLiteRunConfig):
  """A kind that scores every checkpoint on a labelled split, picks the best, and can score a TFLite
  export of it (classification, tagging): these flags mean the same in each."""
  do_eval: bool = False
  do_test: bool = False  # the release's: --do_eval scores the (labelled) test split instead of dev
  eval_batch_size: int = 8

  def check_scored_run(self, *required):
    """The checks of a scored kind's run: check_scoring, the `required` flags with the vocabulary and
    model config, positive batch sizes, the training flags."""
    self.check_scoring()
    self.check_required(*required, "vocab_file", "bert_config_file")
    self.check_positive("train_batch_size", "eval_batch_size", "predict_batch_size")
    self.check_training()

  def check_scoring(self):
    """Checks every scored kind makes: something to do, and TFLite flags that need each other."""
    if not (self.do_train or self.do_eval or self.do_predict):
      raise cli.FlagError("nothing to do: pass at least one of --do_train, --do_eval, --do_predict")
    if (self.lite_model_path or self.use_post_quantization) and not self.do_eval:
      raise cli.FlagError("--lite_model_path / --use_post_quantization score the eval split: add "
                          "--do_eval")
    if not 0 <= self.warmup_proportion < 1:
      raise cli.FlagError(f"--warmup_proportion must be in [0, 1), got {self.warmup_proportion}")
    self.check_int8_numerics()


def default(config_class, name):
  """The dataclass default of field `name`: what its flag defaults to."""
  field = config_class.__dataclass_fields__[name]
  if field.default is dataclasses.MISSING:
    raise ValueError(f"{config_class.__name__}.{name} has no default")
  return field.default


def config_from_flags(config_class, flag_values, **given):
  """`config_class` from the flags of the same names; `given` fields are passed as they are."""
  given.setdefault("distillation", distillation_settings.from_flags(flag_values))
  names = {f.name for f in dataclasses.fields(config_class)} - {"run"} - set(given)
  return config_class(run=RunSettings.from_flags(flag_values), **given,
                      **{name: getattr(flag_values, name) for name in names})
