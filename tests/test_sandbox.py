"""The sandbox contains hostile programs: each is stopped, scored as a failure with its reason, and
the harness (this test process) goes on running."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from harness.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=512)
SANDBOX_SOURCE = Path(__file__).resolve().parent.parent / "harness" / "sandbox.py"


def test_a_correct_program_passes_and_reports_its_isolation():
    result = run_python("print('hello')\nassert sum(range(4)) == 6\n", FAST)
    assert result.passed and result.reason is None and result.returncode == 0
    assert result.stdout.strip() == "hello"
    for layer in ("wall clock", "clean environment", "throw-away work directory", "audit hook"):
        assert layer in result.layers


def test_failures_keep_the_exception_as_the_reason():
    result = run_python("def f(x):\n    return x + 1\nassert f(1) == 3, 'f(1) should be 3'\n", FAST)
    assert result.status == "failed" and result.reason == "AssertionError: f(1) should be 3"
    crashed = run_python("raise ValueError('bad input')\n", FAST)
    assert crashed.status == "failed" and crashed.reason == "ValueError: bad input"
    syntax = run_python("def f(:\n    pass\n", FAST)
    assert syntax.status == "failed" and syntax.reason.startswith("SyntaxError")


def test_exiting_before_the_tests_ran_is_not_a_pass():
    for exit_call in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "exit()"):
        result = run_python(f"{exit_call}\nassert False, 'the tests'\n", FAST)
        assert result.status == "failed" and "exited before its last line ran" in result.reason, exit_call


def test_an_infinite_loop_is_stopped_by_the_cpu_or_wall_clock_limit():
    result = run_python("while True:\n    pass\n", SandboxLimits(wall_s=3, cpu_s=1))
    assert result.status in ("cpu_limit", "timeout"), result
    assert result.seconds < 3 + 2  # the wall clock bounds it whatever the machine's load


def test_a_sleeping_program_is_stopped_by_the_wall_clock():
    result = run_python("import time\ntime.sleep(60)\n", SandboxLimits(wall_s=1))
    assert result.status == "timeout" and result.reason == "timeout: wall-clock limit of 1 s reached"
    assert result.seconds < 3


def test_a_fork_bomb_is_contained_and_leaves_no_process_behind():
    bomb = "import os\nwhile True:\n    os.fork()\n"
    result = run_python(bomb, FAST)
    assert not result.passed and result.status == "refused", result
    assert "os.fork" in result.reason
    # multiprocessing and subprocess are process creation too
    for program in ("import subprocess\nsubprocess.run(['true'])\n", "import os\nos.system('true')\n",
                    "import multiprocessing\nmultiprocessing.Process(target=print).start()\n"):
        assert run_python(program, FAST).status == "refused", program


def test_a_memory_bomb_hits_the_memory_limit():
    for bomb in ("x = bytearray(10 ** 11)\n", "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n"):
        result = run_python(bomb, FAST)
        assert result.status == "memory_limit", result
        assert result.reason == "memory limit of 512 MiB reached (MemoryError)"


def test_writing_outside_the_work_directory_is_refused(tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    attempts = [
        f"open({str(target)!r}, 'w').write('x')",
        f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
        f"import os\nos.symlink({str(target)!r}, 'link')\nopen('link', 'w').write('x')",
        f"import os\nfd = os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY)\nos.write(fd, b'x')",
        f"import os\nos.chdir('..')\nopen({target.name!r}, 'w').write('x')",
    ]
    for attempt in attempts:
        result = run_python(attempt + "\n", FAST)
        assert not result.passed and "PermissionError" in result.reason, (attempt, result)
        assert not target.exists(), attempt
    keep = tmp_path / "keep.txt"
    keep.write_text("harness data")
    result = run_python(f"import os\nos.remove({str(keep)!r})\n", FAST)
    assert result.status == "refused" and keep.read_text() == "harness data"
    # inside its own directory it may write what it likes
    inside = run_python("open('notes.txt', 'w').write('ok')\nassert open('notes.txt').read() == 'ok'\n", FAST)
    assert inside.passed, inside


def test_opening_a_network_socket_is_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    program = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'stolen')\n"
    try:
        result = run_python(program, FAST)
        watcher = threading.Thread(target=accept)
        watcher.start()
        watcher.join()
    finally:
        server.close()
    assert not result.passed and "PermissionError" in result.reason, result
    assert accepted == []
    udp = run_python("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))\n", FAST)
    assert udp.status == "refused"


def test_environment_variables_and_secrets_are_not_inherited(monkeypatch):
    monkeypatch.setenv("DLM_BENCH_TEST_SECRET", "hunter2")
    program = textwrap.dedent("""
        import os
        print({name: value for name, value in os.environ.items()})
        assert "DLM_BENCH_TEST_SECRET" in os.environ, "no secret in the environment"
    """)
    result = run_python(program, FAST)
    assert result.status == "failed" and "no secret in the environment" in result.reason
    assert "hunter2" not in result.stdout + result.stderr
    # nor through the harness's own /proc entry
    steal = run_python("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n", FAST)
    assert not steal.passed and "hunter2" not in steal.stdout + steal.stderr


def test_it_cannot_signal_the_harness_or_lift_its_limits():
    kill = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", FAST)
    assert kill.status == "refused"
    lift = run_python("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n", FAST)
    assert lift.status == "refused"
    native = run_python("import ctypes\nctypes.CDLL(None).fork()\n", FAST)
    assert native.status == "refused"


def test_the_harness_keeps_running_after_every_hostile_program():
    # Everything above ran in this process; one more clean run proves the harness is intact.
    assert run_python("assert 2 + 2 == 4\n", FAST).passed
    leftovers = [d for d in Path(tempfile.gettempdir()).glob("dlm-sandbox-*")]
    assert leftovers == []  # every throw-away directory was removed


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux only")
def test_the_kernel_layers_hold_without_the_audit_hook(tmp_path):
    """Without layer 6 the kernel still refuses: Landlock (files, TCP) and the namespaces."""
    bare = SandboxLimits(wall_s=4, cpu_s=2, memory_mb=512, audit_hook=False)
    probe = run_python("pass\n", bare)
    landlock = any(layer.startswith("landlock") for layer in probe.layers)
    if not landlock:
        pytest.skip(f"Landlock is not available on this kernel (layers: {probe.layers})")
    target = tmp_path / "escape"
    write = run_python(f"open({str(target)!r}, 'w').write('x')\n", bare)
    assert write.status == "failed" and "Permission denied" in write.reason and not target.exists()
    secret = run_python("print(open(f'/proc/{__import__(\"os\").getppid()}/environ').read())\n", bare)
    assert secret.status == "failed" and "Permission denied" in secret.reason
    if "TCP" in next(layer for layer in probe.layers if layer.startswith("landlock")):
        connect = run_python("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n", bare)
        assert connect.status == "failed" and ("Permission denied" in connect.reason or "unreachable" in connect.reason)


def _unprivileged_python() -> tuple[str, str] | None:
    """(setpriv, a Python interpreter any user can run) when this test runs as root, else None."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return None
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o005 == 0o005:
            return setpriv, candidate
    return None


@pytest.mark.skipif(_unprivileged_python() is None, reason="needs root, setpriv and a world-executable python3 to switch to nobody")
def test_without_root_a_fork_bomb_is_held_by_the_kernel_even_without_the_audit_hook():
    """Users run the harness without root: there RLIMIT_NPROC binds, so even a fork bomb that got
    past the audit hook cannot grow beyond the process allowance."""
    setpriv, python = _unprivileged_python()
    folder = Path(tempfile.mkdtemp(prefix="dlm-sandbox-nonroot-test-"))
    try:
        folder.chmod(0o755)
        (folder / "harness").mkdir()
        (folder / "harness" / "__init__.py").write_text("")
        shutil.copy(SANDBOX_SOURCE, folder / "harness" / "sandbox.py")
        driver = textwrap.dedent("""
            import os, sys, time
            sys.path.insert(0, sys.argv[1])
            from harness.sandbox import SandboxLimits, run_python
            bomb = "import os, time\\nfor _ in range(200):\\n    if os.fork() == 0:\\n        time.sleep(2)\\n        os._exit(0)\\n"
            result = run_python(bomb, SandboxLimits(wall_s=5, processes=8, audit_hook=False))
            time.sleep(0.2)
            mine = [p for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == os.getuid()]
            # killed children wait as zombies until the machine's init reaps them: count the living
            alive = [p for p in mine if open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
            print(os.getuid(), result.status, result.reason, len(alive), sep="|")
            print("|".join(result.layers))
        """)
        (folder / "driver.py").write_text(driver)
        for path in folder.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, str(folder / "driver.py"), str(folder)],
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    verdict, layers = done.stdout.strip().splitlines()
    uid, status, reason, processes_left = verdict.split("|")
    assert uid == "65534"
    assert processes_left == "1"  # the driver itself: the bomb's sleeping children died with their group
    assert status == "failed" and "Resource temporarily unavailable" in reason, verdict
    assert "process count (RLIMIT_NPROC)" in layers and "audit hook" not in layers
