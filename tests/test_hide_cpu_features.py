"""bench/hide_cpu_features.py: a command under it, its threads and its children see an AVX2-only CPU,
everything else about them works as before, and it refuses where it cannot hide anything.

The process tests need what the tool needs (x86-64 Linux with CPUID faulting, AVX-512 to hide, a C
compiler) and skip elsewhere.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import hide_cpu_features  # noqa: E402  pylint: disable=g-import-not-at-top
import machine  # noqa: E402  pylint: disable=g-import-not-at-top

TOOL = str(ROOT / "bench" / "hide_cpu_features.py")


def _can_hide():
  try:
    hide_cpu_features.check_machine()
  except hide_cpu_features.HideError as e:
    return str(e)
  if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")):
    return "no C compiler"
  return None


needs_hiding = pytest.mark.skipif(bool(_can_hide()), reason=f"cannot hide here: {_can_hide()}")

# What the child reports: NumPy's run-time CPU dispatch (CPUID), in the process, in a thread it
# starts and in a child process it starts; and the benchmarks' view of the machine.
PROBE = textwrap.dedent("""
    import json, subprocess, sys, threading
    sys.path.insert(0, sys.argv[1])
    import machine
    def features():
      from numpy.core._multiarray_umath import __cpu_features__ as f
      return [f["AVX2"], f["FMA3"], f["AVX512F"], f["AVX512_SKX"], f.get("AVX512_CNL", False)]
    seen = {"process": features()}
    thread = threading.Thread(target=lambda: seen.update(thread=features())); thread.start()
    thread.join()
    child = subprocess.run([sys.executable, "-c", "from numpy.core._multiarray_umath import "
                            "__cpu_features__ as f; print(int(f['AVX512F']), int(f['AVX2']))"],
                           capture_output=True, text=True, check=True)
    seen["child"] = child.stdout.split()
    seen["results_name"] = machine.results_name()
    seen["kind"] = machine.cpu_kind()
    print(json.dumps(seen))
""")


def _run(command, **kwargs):
  return subprocess.run([sys.executable, TOOL, *command], capture_output=True, text=True,
                        timeout=300, **kwargs)


@needs_hiding
def test_the_command_its_threads_and_its_children_see_avx2_without_avx512():
  import json  # pylint: disable=g-import-not-at-top
  plain = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "bench")], capture_output=True,
                         text=True, check=True)
  assert json.loads(plain.stdout)["process"][2] is True  # the machine has AVX-512 to hide
  hidden = _run(["python", "-c", PROBE, str(ROOT / "bench")])
  assert hidden.returncode == 0, hidden.stderr
  seen = json.loads(hidden.stdout)
  assert seen["process"] == [True, True, False, False, False]
  assert seen["thread"] == seen["process"]
  assert seen["child"] == ["0", "1"]
  assert seen["kind"] == "avx2"
  assert seen["results_name"] == f"avx2-{machine.cpu_vendor()}-avx512-hidden"


@needs_hiding
def test_other_faults_still_reach_the_programs_crash_handler():
  """The library's SIGSEGV handler takes CPUID faults only: Python's faulthandler still reports a
  crash, and without a handler the process still dies of SIGSEGV."""
  crash = "import ctypes; ctypes.string_at(0)"
  reported = _run(["python", "-X", "faulthandler", "-c", crash])
  assert reported.returncode == -11
  assert "Fatal Python error: Segmentation fault" in reported.stderr
  assert 'File "<string>", line 1' in reported.stderr
  silent = _run(["python", "-c", crash])
  assert silent.returncode == -11 and "Fatal Python error" not in silent.stderr


@needs_hiding
def test_the_exit_code_is_the_commands():
  assert _run(["python", "-c", "import sys; sys.exit(7)"]).returncode == 7
  missing = _run(["no-such-command-here"])
  assert missing.returncode == 2
  assert missing.stderr.strip() == ("hide_cpu_features: cannot run no-such-command-here: "
                                    "No such file or directory")


def test_it_refuses_a_cpu_with_nothing_to_hide(monkeypatch, capsys):
  monkeypatch.setattr(machine, "_cpuinfo_field",
                      {"flags": "fpu sse avx avx2 fma cpuid_fault"}.get)
  assert hide_cpu_features.main(["python", "-c", "pass"]) == 2
  err = capsys.readouterr().err.strip()
  assert err == ("hide_cpu_features: this CPU has no AVX-512, AVX-VNNI or AMX to hide: "
                 "run the command as it is")


def test_it_refuses_without_cpuid_faulting(monkeypatch, capsys):
  monkeypatch.setattr(machine, "_cpuinfo_field", {"flags": "avx2 avx512f fma"}.get)
  assert hide_cpu_features.main(["python", "-c", "pass"]) == 2
  assert "no CPUID faulting (/proc/cpuinfo flag cpuid_fault)" in capsys.readouterr().err


def test_a_missing_or_failing_compiler_is_one_clear_error(tmp_path, monkeypatch):
  monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
  with pytest.raises(hide_cpu_features.HideError, match=r"cannot run the C compiler .*no-such-cc"):
    hide_cpu_features.build_library(str(tmp_path))
  failing = tmp_path / "failing-cc"
  failing.write_text("#!/bin/sh\necho 'cc: fatal error: out of cheese' >&2\nexit 1\n")
  failing.chmod(0o755)
  monkeypatch.setenv("CC", str(failing))
  with pytest.raises(hide_cpu_features.HideError,
                     match=r"hide_cpu_features.c with .*failing-cc failed: cc: fatal error: out of cheese$"):
    hide_cpu_features.build_library(str(tmp_path))
  monkeypatch.delenv("CC")
  monkeypatch.setattr(shutil, "which", lambda name: None)
  with pytest.raises(hide_cpu_features.HideError, match=r"^no C compiler \(cc, gcc or \$CC\)"):
    hide_cpu_features.build_library(str(tmp_path))
  assert not list(tmp_path.glob("*.so"))


def test_the_environment_tells_every_dispatching_library():
  env = hide_cpu_features.environment("/x/hide.so", {"LD_PRELOAD": "/y/other.so",
                                                     "GLIBC_TUNABLES": "glibc.malloc.check=0"})
  assert env["LD_PRELOAD"] == "/x/hide.so /y/other.so"
  assert env["GLIBC_TUNABLES"].startswith("glibc.malloc.check=0:glibc.cpu.hwcaps=-AVX512F,")
  assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
  assert env[machine.HIDDEN_FEATURES_ENV] == "avx512,avx_vnni,amx"
