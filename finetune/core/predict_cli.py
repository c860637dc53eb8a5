"""What every raw-text predict command shares: inputs from arguments or stdin, a fine-tuned model's
checkpoint, text or JSON-lines output, and user errors as one line (in the spirit of mobilebert.fill_mask).

Inputs: each command names its fields (`text`; `text_a`, `text_b`; `question`, `context`). Arguments
are taken that many at a time, in order; without arguments (or with `-`), standard input is read, one
input a line with its fields separated by tabs.
"""

import json
import sys

from absl import flags

from finetune.core import checkpoint_scoring
from mobilebert import cli

FLAGS = flags.FLAGS
STDIN = "-"


def define_flags():
  """The flags every predict command takes."""
  cli.define_verbose_flag()
  flags.DEFINE_string("output_dir", None, "The --output_dir of the fine-tuning run (--do_train) whose "
                      "model predicts: its checkpoints, config, vocab and finetune_settings.json.")
  flags.DEFINE_string("checkpoint", None, "best (the one eval_history.json names best and still on "
                      "disk), latest, or a checkpoint path; default best if the run scored its "
                      "checkpoints, else latest.")
  flags.DEFINE_bool("json", False, "Print one JSON object per input instead of text lines.")
  flags.DEFINE_integer("batch_size", 32, "Inputs per model call.")


def read_inputs(args, fields, stdin=None):
  """Tuples of `len(fields)` strings from the positional args, or from stdin lines when there are none.

  Raises cli.FlagError for a count of arguments or a line that does not fill the fields.
  """
  args = list(args)
  if args and args != [STDIN]:
    if len(args) % len(fields):
      raise cli.FlagError(f"{len(args)} text argument(s) given; this model reads {len(fields)} per "
                          f"input ({', '.join(fields)}), so give a multiple of {len(fields)}")
    inputs = [tuple(args[i:i + len(fields)]) for i in range(0, len(args), len(fields))]
  else:
    inputs = []
    for line_no, line in enumerate(stdin or sys.stdin, 1):
      line = line.rstrip("\r\n")
      if not line.strip():
        continue
      parts = line.split("\t", len(fields) - 1) if len(fields) > 1 else [line]
      if len(parts) != len(fields):
        raise cli.FlagError(f"stdin line {line_no}: expected {len(fields)} tab-separated fields "
                            f"({', '.join(fields)}), found {len(parts)}")
      inputs.append(tuple(parts))
  for values in inputs:
    for name, value in zip(fields, values):
      if not value.strip():
        raise cli.FlagError(f"empty {name} in input {values!r}")
  if not inputs:
    raise cli.FlagError(f"no input: pass {' '.join(f.upper() for f in fields)} as arguments or one "
                        "input a line (tab-separated) on stdin")
  return inputs


def choose_checkpoint(output_dir, choice=None):
  """The checkpoint prefix to predict with (see --checkpoint)."""
  if choice and choice not in ("best", "latest"):
    return choice
  on_disk = checkpoint_scoring.checkpoints_on_disk(output_dir)
  if not on_disk:
    raise cli.FlagError(f"--output_dir={output_dir} holds no checkpoint; run --do_train first")
  if choice == "latest":
    return on_disk[-1]
  try:
    return checkpoint_scoring.best_kept_checkpoint(output_dir)
  except cli.FlagError:
    if choice == "best":
      raise
    return on_disk[-1]


def batches(items, batch_size):
  if batch_size < 1:
    raise cli.FlagError(f"--batch_size must be at least 1, got {batch_size}")
  for start in range(0, len(items), batch_size):
    yield items[start:start + batch_size]


def print_results(results, format_text, as_json, out=None):
  """One JSON object a line, or the text lines `format_text(result)` gives."""
  out = out or sys.stdout
  for result in results:
    out.write((json.dumps(result, ensure_ascii=False) if as_json
               else "\n".join(format_text(result))) + "\n")
