"""Errors caused by the user's input, and the one boundary every program runs behind.

Library code raises a `UserInputError` subclass (or a built-in file error such as
FileNotFoundError) whose message names the file/line, flag or variable and what was expected.
A program's `run()` is `errors.run_program(main)`: such an error prints one line

    bert-run-classifier: error: glue/MRPC/dev.tsv:12: expected at least 5 tab-separated fields

and exits with

    0    success
    1    a bad input file or folder (missing, unreadable, damaged, wrong content)
    2    a usage error: a bad flag value, a missing flag, flags that contradict each other
    130  interrupted (Ctrl-C)

with no traceback; `--verbose` (or absl's `-v 1`) prints the traceback too. Any other
exception is a bug and keeps its traceback.
"""
import os
import re
import sys
import traceback


class UserInputError(ValueError):
  """The user's input is wrong; the message names what and what was expected. Exit status 1.

  A ValueError so that callers written before this hierarchy still catch it."""
  exit_code = 1


class InputFileError(UserInputError):
  """An input file or folder is missing, damaged or holds the wrong content (exit status 1)."""
  exit_code = 1


class FlagError(UserInputError):
  """A flag (or an argument of the Python API) has a wrong value, is missing, or contradicts
  another one (exit status 2)."""
  exit_code = 2


# Built-in errors that report the user's files, not a bug: exit status 1 with their message.
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                FileExistsError)


def _tf_file_errors():
  """TensorFlow's errors about files (only if TensorFlow is loaded already)."""
  tf = sys.modules.get("tensorflow")
  if tf is None or not hasattr(tf, "errors"):
    return ()
  return (tf.errors.NotFoundError, tf.errors.PermissionDeniedError, tf.errors.DataLossError,
          tf.errors.AlreadyExistsError)


def classify(error):
  """(exit status, one-line message) for an error caused by the user's input, else None."""
  from absl import app, flags  # pylint: disable=import-outside-toplevel
  if isinstance(error, (flags.Error, app.UsageError)):
    return 2, _one_line(str(error))
  if isinstance(error, UserInputError):
    return error.exit_code, _one_line(str(error))
  if isinstance(error, _FILE_ERRORS):
    if getattr(error, "filename", None) and getattr(error, "strerror", None):
      return 1, f"{error.filename}: {error.strerror}"
    return 1, _one_line(str(error))
  if isinstance(error, _tf_file_errors()):
    return 1, _one_line(getattr(error, "message", str(error)))
  return None


def _one_line(message):
  message = re.sub(r"\{\{[^}]*\}\}\s*", "", str(message))   # TensorFlow's op-name prefix
  lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
  return " ".join(lines) if len(lines) <= 3 else lines[0]


def program_name():
  name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "bert_tf")
  return name[:-3] if name.endswith(".py") else name


def _verbose():
  from absl import flags  # pylint: disable=import-outside-toplevel
  values = flags.FLAGS
  if not values.is_parsed():
    return any(a in ("--verbose", "--verbose=true", "--verbose=1") for a in sys.argv)
  return bool(values["verbose"].value if "verbose" in values else False) or (
      "verbosity" in values and values.verbosity >= 1)


def report_and_exit(error):
  """Prints a user-input error as one line (plus the traceback with --verbose) and exits with
  its status. Returns normally (does nothing) for errors that are bugs."""
  if isinstance(error, KeyboardInterrupt):
    detail = f": {error}" if str(error) else ""
    print(f"{program_name()}: interrupted{detail}", file=sys.stderr, flush=True)
    sys.exit(130)
  verdict = classify(error)
  if verdict is None:
    return
  status, message = verdict
  if _verbose():
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
  hint = " (--helpshort lists the flags)" if status == 2 else ""
  print(f"{program_name()}: error: {message}{hint}", file=sys.stderr, flush=True)
  sys.exit(status)


def _parse_flags(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    report_and_exit(e)
    raise


def run_program(main, argv=None):
  """absl's app.run(main) behind the shared error boundary (see the module docstring)."""
  from absl import app, flags  # pylint: disable=import-outside-toplevel
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_bool("verbose", False, "On an error caused by the input, print the traceback "
                      "as well as the one-line message.")

  def guarded_main(args):
    try:
      return main(args)
    except (Exception, KeyboardInterrupt) as e:  # pylint: disable=broad-except
      report_and_exit(e)
      raise

  app.run(guarded_main, argv=argv, flags_parser=_parse_flags)


def check_positive(**values):
  """FlagError naming the first flag whose value is not a positive number."""
  for name, value in values.items():
    if value is None or value <= 0:
      raise FlagError(f"--{name}={value}; expected a positive number")
