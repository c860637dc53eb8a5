"""What every command-line tool does with an error: a user's mistake is one line, a bug a traceback.

A *user error* is raised because of the flags, files or data a user passed, never because of a bug; it
derives from `UserError` and its message names the flag, file or field and what was expected. Every
entry point runs its work inside `reporting_user_errors(tool)`, which turns a UserError into

    <tool>: error: <message>

on stderr and exit status 2 (what absl and argparse use for a bad command line). `--verbose` adds the
traceback before that line. Entry points start with `run_main(main, tool)`, which reports flags that do
not parse in the same way. Any other exception is a bug and keeps Python's traceback and status 1.

Standard library only, and TensorFlow-free at import, so the stand-alone metric script can use it too.
"""

import contextlib
import os
import re
import sys
import traceback

EXIT_USER_ERROR = 2
# What a run writes about itself before its outputs: the outputs manifest and scanned record counts
# (atomic_io, input_pipeline: `.mobilebert-*.json`) and the record of its settings
# (resume_settings.FILE_NAME). A folder the run made holding only these is empty for the user.
BOOKKEEPING = re.compile(r"^(\.mobilebert-[a-z-]+\.json|run_settings\.json)$")
VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "On a user error, print the traceback before the one-line message."


class UserError(Exception):
  """Base of every error a user's flags, files or data cause (reported as one line, exit 2).

  Subclasses also derive from the builtin they refine (ValueError, FileNotFoundError) so callers that
  catch those keep working.
  """


class FlagError(UserError, ValueError):
  """A flag that is missing, out of range, or contradicts another flag; the message names the flag."""


class DataError(UserError, ValueError):
  """An input file whose content is not what the tool expects; the message names the file and field."""


def define_verbose_flag():
  """Defines absl's --verbose once (absl is imported here so the metric script does not need it)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_bool("verbose", False, VERBOSE_HELP)


def run_main(main, tool):
  """absl's app.run(main), but a command line whose flags do not parse (an unknown flag, a value of
  the wrong type or outside an enum) is a user error too: `<tool>: error: <absl's message>`, exit 2,
  where absl prints `FATAL Flags parsing error` and exits 1. --helpshort and --helpfull work as ever."""
  from absl import app, flags  # pylint: disable=import-outside-toplevel

  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      sys.stderr.write(f"{tool}: error: {one_line(e)} (--helpshort lists the flags)\n")
      sys.exit(EXIT_USER_ERROR)

  return app.run(main, flags_parser=parse)


def _verbose_from_flags():
  from absl import flags  # pylint: disable=import-outside-toplevel
  return "verbose" in flags.FLAGS and flags.FLAGS.is_parsed() and flags.FLAGS.verbose


def one_line(message):
  """The message on one line (a multi-line message would read as several errors)."""
  return " ".join(str(message).split("\n"))


@contextlib.contextmanager
def reporting_user_errors(tool, verbose=None):
  """Runs the body; a UserError becomes `<tool>: error: <message>` and SystemExit(2).

  verbose: print the traceback too; None reads absl's --verbose (see define_verbose_flag).
  """
  try:
    yield
  except UserError as e:
    if verbose is None:
      verbose = _verbose_from_flags()
    if verbose:
      traceback.print_exc()
    sys.stderr.write(f"{tool}: error: {one_line(e)}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USER_ERROR) from None


def _missing_ancestors(path):
  """The directories of `path` (itself first, then upwards) that do not exist yet."""
  missing = []
  path = os.path.abspath(path)
  while path and not os.path.exists(path):
    missing.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return missing


def _holds_no_file(path):
  """True if nothing but the tools' bookkeeping (BOOKKEEPING) is under `path`."""
  return all(BOOKKEEPING.match(name) for _, _, files in os.walk(path) for name in files)


@contextlib.contextmanager
def removing_output_dir_left_empty(path):
  """If the body fails, removes the directories of `path` this run created, when no file is in them.

  A run that fails before writing anything leaves no empty output folder behind (the records it keeps
  about itself, BOOKKEEPING, go with it); a folder that existed before the run, or that holds any other
  file (a checkpoint, a feature cache), is left as it is. Remote paths (gs://) have no empty folders to
  leave, so they are not touched.
  """
  created = [] if not path or "://" in path else _missing_ancestors(path)
  try:
    yield
  except BaseException:
    # Outermost first: the highest directory this run created goes if nothing at all was written.
    for directory in reversed(created):
      if os.path.isdir(directory) and _holds_no_file(directory):
        for root, dirs, files in os.walk(directory, topdown=False):
          for name in files:  # bookkeeping only (_holds_no_file)
            os.remove(os.path.join(root, name))
          for name in dirs:
            os.rmdir(os.path.join(root, name))
        os.rmdir(directory)
        break
    raise
