r"""Runs a command with AVX-512, AVX-VNNI and AMX hidden from the CPU's feature list, so that on an AVX-512
machine the benchmarks time what an AVX2-only CPU runs:

  python bench/hide_cpu_features.py python bench/bench_model.py --tflite_only --rounds 5 \
      --results_dir bench/results

XNNPACK (LiteRT's CPU delegate), PyTorch, oneDNN and NumPy choose their kernels at run time from what
the CPUID instruction reports. `hide_cpu_features.c`, built here with the machine's C compiler and
preloaded into the command and every process it starts, answers CPUID with those features cleared
(through Linux's CPUID faulting), so the AVX2 kernels are chosen and run natively at full speed: the
instruction set is an AVX2-only CPU's, the cores, caches and clock stay this machine's. glibc's own
string functions are steered to AVX2 by its tunables, and PyTorch and oneDNN are also told by their
documented variables. The benchmarks see the hidden features (`machine.hidden_cpu_features`), file
their results under the kind the command saw (`avx2-<vendor>-avx512-hidden.json`) and say so with every
number.

Needs Linux on x86-64 with CPUID faulting (/proc/cpuinfo flag `cpuid_fault`) and a C compiler
(`cc`, or $CC). Refuses on a CPU with nothing to hide: run the command as it is there.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import machine

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hide_cpu_features.c")
# Prefixes of the /proc/cpuinfo flags the library clears from CPUID (its `hide` says which bits).
HIDDEN = ("avx512", "avx_vnni", "amx")
GLIBC_HIDDEN = ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512ER", "AVX512PF",
                "AVX_VNNI")


class HideError(Exception):
  """The features cannot be hidden here; the message says why."""


def build_library(build_dir=None):
  """Path of the preload library, compiled once per source version into `build_dir` (default: temp)."""
  with open(SOURCE, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()[:16]
  build_dir = build_dir or tempfile.gettempdir()
  path = os.path.join(build_dir, f"mobilebert-hide-cpu-features-{digest}.so")
  if os.path.exists(path):
    return path
  compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
  if not compiler:
    raise HideError("no C compiler (cc, gcc or $CC) to build bench/hide_cpu_features.c")
  partial = f"{path}.{os.getpid()}.partial"
  try:
    built = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", partial, SOURCE, "-ldl"],
                           capture_output=True, text=True, check=False)
  except OSError as e:
    raise HideError(f"cannot run the C compiler {compiler}: {e.strerror}") from None
  if built.returncode != 0:
    raise HideError(f"building {SOURCE} with {compiler} failed: "
                    f"{' '.join(built.stderr.strip().splitlines()[-1:])}")
  os.replace(partial, path)
  return path


def environment(library, base=None):
  """`base` (default os.environ) with the library preloaded and every CPU-dispatching library told."""
  env = dict(os.environ if base is None else base)
  env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD")]))
  hwcaps = "glibc.cpu.hwcaps=" + ",".join("-" + f for f in GLIBC_HIDDEN)
  env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), hwcaps]))
  env["ATEN_CPU_CAPABILITY"] = "avx2"
  env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
  env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2"
  env[machine.HIDDEN_FEATURES_ENV] = ",".join(HIDDEN)
  return env


def check_machine():
  real = machine.cpu_flags(everything=True)
  if "cpuid_fault" not in real:
    raise HideError("this CPU or kernel has no CPUID faulting (/proc/cpuinfo flag cpuid_fault)")
  if not any(f.startswith(HIDDEN) for f in real):
    raise HideError("this CPU has no AVX-512, AVX-VNNI or AMX to hide: run the command as it is")


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if argv[:1] == ["--"]:
    argv = argv[1:]
  if not argv or argv[0] in ("-h", "--help"):
    print(__doc__.strip())
    return 0 if argv else 2
  try:
    check_machine()
    library = build_library()
  except HideError as e:
    print(f"hide_cpu_features: {e}", file=sys.stderr)
    return 2
  if argv[0] in ("python", "python3"):  # the interpreter running this script, as the usage means
    argv = [sys.executable] + argv[1:]
  try:
    os.execvpe(argv[0], argv, environment(library))
  except OSError as e:
    print(f"hide_cpu_features: cannot run {argv[0]}: {e.strerror}", file=sys.stderr)
    return 2
  return 0  # not reached: the command replaced this process


if __name__ == "__main__":
  sys.exit(main())
