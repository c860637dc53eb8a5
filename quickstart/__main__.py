"""Runs the quick start: teacher, progressive transfer, distillation, control, fine-tuning, report.

  python -m quickstart [--output_dir=output/quickstart] [--size=small] [--steps_scale=1] \
      [--finetune_seeds=3]

Rerunning the same command after an interruption skips the finished stages and resumes the one that
was cut off. See quickstart/recipe.py for the stages and quickstart/sizes.py for the sizes.
"""

import argparse
import os
import sys
import time

from quickstart import finetuning, recipe, sizes
from quickstart.stages import StageError, StageRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="quickstart", description=__doc__.splitlines()[0])
  parser.add_argument("--output_dir", default=os.path.join(ROOT, "output", "quickstart"),
                      help="where everything goes (default: output/quickstart in the checkout)")
  parser.add_argument("--size", default="small", choices=sorted(sizes.SIZES),
                      help="tiny: minutes (tests); small: about an hour on 2 CPU cores; base: hours")
  parser.add_argument("--steps_scale", type=float, default=1.0,
                      help="multiply every training step count by this (e.g. 4 to train longer)")
  parser.add_argument("--finetune_seeds", type=int, default=sizes.DEFAULT_FINETUNE_SEEDS,
                      help="fine-tuning runs per model and task, one seed each; the report gives "
                           "their mean and standard deviation")
  parser.add_argument("--vocab_file", default=None,
                      help="WordPiece vocab (default: the 21,128-entry Chinese vocab of cn-clip)")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  output_dir = os.path.abspath(args.output_dir)
  try:
    size = sizes.get(args.size, args.steps_scale)
    if args.vocab_file is None:
      from mobilebert import assets
      args.vocab_file = assets.chinese_vocab_file()
    if not os.path.isfile(args.vocab_file):
      raise ValueError(f"--vocab_file={args.vocab_file}: no such file")
    from mobilebert import atomic_io
    atomic_io.check_spares_inputs({"--output_dir": output_dir}, {
        "--vocab_file": args.vocab_file, "the quick start's configs": os.path.join(ROOT, "config")})
    finetuning.seeds(args.finetune_seeds)
    # Whether run_classifier.py can distil a fine-tuned teacher decides whether the fourth row exists.
    settings = {"size": args.size, "steps_scale": args.steps_scale,
                "vocab_file": os.path.abspath(args.vocab_file),
                "finetune_seeds": args.finetune_seeds,
                "task_distillation": finetuning.task_distillation_supported()}
    recipe.check_settings(output_dir, settings)
  except (ValueError, RuntimeError) as error:
    print(f"quickstart: {error}", file=sys.stderr)
    return 2
  command = "bash run_scripts/quickstart.sh" + "".join(
      f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
  paths = recipe.Paths(output_dir, ROOT)
  runner = StageRunner(output_dir)
  stages = recipe.stages(size, paths, args.vocab_file, command, args.finetune_seeds)
  expected = sum(stage.cost for stage in stages) / 60
  runner.log(f"quick start, size {size.name}, about {expected:.0f} min on 2 CPU cores with nothing "
             f"else running; everything goes to {output_dir}")
  start = time.time()
  try:
    runner.run(stages)
  except StageError as error:
    print(f"\nquickstart: {error}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("\nquickstart: interrupted; run the same command again to continue", file=sys.stderr)
    return 130
  runner.log(f"finished in {(time.time() - start) / 60:.1f} min\n")
  with open(os.path.join(output_dir, "results.md"), encoding="utf-8") as f:
    print(f.read())
  return 0


if __name__ == "__main__":
  sys.exit(main())
