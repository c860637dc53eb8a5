"""Flag groups shared by the entry points, with the original names, meanings and defaults.

Entry points call the `define_*` functions they need at import time and turn FLAGS into typed
settings once (`run_config.RunSettings.from_flags`); library code never reads flags.
"""

from absl import flags

FLAGS = flags.FLAGS


def _define_once(kind, name, default, help_text, **kwargs):
  if name in FLAGS:
    return
  if kind == "enum":  # DEFINE_enum takes the values before the help text
    flags.DEFINE_enum(name, default, kwargs.pop("enum_values"), help_text, **kwargs)
    return
  getattr(flags, f"DEFINE_{kind}")(name, default, help_text, **kwargs)


def define_model_flags():
  """Model and vocabulary: which network to build and where its weights come from."""
  _define_once("string", "bert_config_file", None,
               "Model config JSON (original BertConfig keys); defines the architecture.")
  _define_once("string", "init_checkpoint", None,
               "Checkpoint (prefix or directory) to initialize from; extra entries such as teacher/* "
               "and optimizer slots are ignored, an entry of another shape than the graph's stops the "
               "run (see --skip_mismatched_variables).")
  _define_once("bool", "skip_mismatched_variables", False,
               "Leave variables whose --init_checkpoint entry has another shape at their initializer "
               "(listed in the log), and accept a checkpoint that initializes nothing, instead of "
               "stopping: the model then trains partly from random weights.")
  _define_once("string", "vocab_file", None, "Vocabulary file the model was trained with.")
  _define_once("bool", "do_lower_case", True, "Lower-case and strip accents (uncased models).")
  _define_once("integer", "max_seq_length", 128, "Maximum total sequence length after WordPiece.")
  _define_once("bool", "use_einsum", True, "Use einsum (3-D) dense layers; same variables either way.")


def define_quantization_flags():
  """--use_quantized_training (the release's run_squad.py name), for every fine-tuning runner."""
  _define_once("bool", "use_quantized_training", False,
               "Quantization-aware fine-tuning: fake-quantize the weights and outputs of every dense "
               "layer to 8 bits, learning their ranges (mobilebert/quantization.py).")


def define_run_flags():
  """Where and how the Estimator runs: TPU, GPUs, checkpoints, precision, seed."""
  _define_once("string", "output_dir", None, "Directory for checkpoints, summaries and results.")
  _define_once("bool", "use_tpu", False, "Run on a Cloud TPU through TPUEstimator.")
  _define_once("string", "tpu_name", None, "Cloud TPU name or grpc:// address (with --use_tpu).")
  _define_once("string", "tpu_zone", None, "GCE zone of the TPU; detected when empty.")
  _define_once("string", "gcp_project", None, "GCP project of the TPU; detected when empty.")
  _define_once("string", "master", None, "TensorFlow master URL.")
  _define_once("integer", "num_tpu_cores", 8, "TPU cores (with --use_tpu).")
  _define_once("integer", "iterations_per_loop", 1000, "Steps per Estimator/TPU loop.")
  _define_once("integer", "save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
  _define_once("integer", "keep_checkpoint_max", 5, "Checkpoints kept in --output_dir.")
  _define_once("integer", "save_summary_steps", 100,
               "Write the training summaries (with --use_summary) every this many steps.")
  _define_once("integer", "num_gpus", 0,
               "Replicate training over this many local GPUs with MirroredStrategy (0 or 1: no "
               "replication). Multi-worker training is enabled by a TF_CONFIG with several workers.")
  _define_once("enum", "precision", "float32", "Activation precision; variables stay float32.",
               enum_values=["float32", "bfloat16", "float16"])
  _define_once("integer", "rand_seed", 12345, "Graph-level random seed (initialization, dropout, "
               "shuffling).")
  _define_once("bool", "allow_changed_settings", False,
               "Resume a run in --output_dir with other training settings (learning rate, steps, "
               "batch, data, seed, ...) than it started with: logged and recorded in its "
               "run_settings.json. Without it such a rerun stops (mobilebert/resume_settings.py).")
