"""Run model-generated Python (HumanEval, MBPP) where it can do no harm, and say how it ended.

Each program runs in a fresh interpreter (`python -I -B`: no user site, no PYTHON* variables, no
bytecode written) in its own session, inside a throw-away working directory that is also its HOME
and TMPDIR, with a clean environment (no inherited variables, so no secrets). Layers, outermost
first; each is used where the OS allows it and the result lists the ones that were active:

1. wall clock: the parent kills the whole process group when `wall_s` runs out;
2. rlimits: CPU seconds, address space (memory), file size, open files, no core dumps, and a
   process count (RLIMIT_NPROC; the kernel does not apply it to uid 0, see 6);
3. a new user + network namespace (`unshare`): no network interfaces at all, no capabilities
   outside the namespace (so even root cannot raise its hard rlimits), and for a non-root user a
   process count local to the sandbox;
4. Landlock (Linux >= 5.13, unprivileged): files may be written only inside the work directory
   and read only there and in the interpreter's own installation and system libraries; TCP
   connect/bind refused (ABI >= 4); signals to processes outside the sandbox refused (ABI >= 6);
5. clean environment and throw-away directory;
6. a Python audit hook installed before the program's first line: refuses process creation
   (fork, exec, spawn, subprocess, system), sockets, writes outside the work directory, reads
   outside the allowed roots, ctypes, signals, rlimit changes, tracing and gc introspection,
   with a `PermissionError("sandbox: ...")` that names what was refused. It is what stops a fork
   bomb under root, where RLIMIT_NPROC does not bind. An audit hook is a tripwire for ordinary
   code, not a jail for a determined attacker who knows CPython's internals: layers 1-5 are
   enforced by the kernel.

A program passes when it exits 0 after its last line ran (the harness appends the tests, so an
early `exit()` or `os._exit(0)` before the tests ran is a failure, not a pass). Anything else is a
failure with its reason: the exception, the limit that was hit, or the refusal.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

FINISHED = "finished"


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 10.0  # wall-clock seconds before the process group is killed
    cpu_s: int = 10  # CPU seconds (RLIMIT_CPU)
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    processes: int = 16  # processes and threads (RLIMIT_NPROC)
    file_mb: int = 16  # largest file it may write (RLIMIT_FSIZE), its stdout and stderr included
    open_files: int = 64  # RLIMIT_NOFILE
    output_chars: int = 4000  # stdout/stderr kept (the tail)
    audit_hook: bool = True  # layer 6; off only to test that the kernel layers hold on their own


@dataclass(frozen=True)
class SandboxResult:
    status: str  # passed | failed | timeout | cpu_limit | memory_limit | refused | crashed
    reason: str | None  # why it did not pass (None when it passed)
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    layers: tuple[str, ...]  # isolation layers that were active, as the sandboxed process reported them

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_python(source: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `source` as a program in the sandbox; never raises for anything the program does."""
    workdir = tempfile.mkdtemp(prefix="dlm-sandbox-")
    private = tempfile.mkdtemp(prefix="dlm-sandbox-io-")  # outside the work dir: the program cannot touch it
    report_r, report_w = os.pipe()
    started = time.monotonic()
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as program:
            program.write(source)
        with open(os.path.join(private, "stdout"), "wb") as out, open(os.path.join(private, "stderr"), "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _bootstrap(workdir, limits, report_w)],
                cwd=workdir, env=_clean_environment(workdir), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                pass_fds=(report_w,), start_new_session=True, close_fds=True,
            )
        os.close(report_w)
        report_w = -1
        timed_out = not _wait_without_reaping(process.pid, limits.wall_s)
        _kill_group(process.pid)  # the group outlives its leader only until here, however it ended
        returncode = process.wait()
        seconds = time.monotonic() - started
        report = _read_report(report_r)
        stdout = _tail(os.path.join(private, "stdout"), limits.output_chars)
        stderr = _tail(os.path.join(private, "stderr"), limits.output_chars)
    finally:
        for fd in (report_r, report_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    layers = tuple(report.get("layers", ()))
    status, reason = _verdict(timed_out, returncode, report.get(FINISHED, False), stderr, limits)
    return SandboxResult(status, reason, None if timed_out else returncode, stdout, stderr, seconds, layers)


def _clean_environment(workdir: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }
    # CPU workarounds some machines need for numerical libraries to run at all; not secrets.
    env.update({k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ})
    return env


def _wait_without_reaping(pid: int, timeout_s: float) -> bool:
    """True when the process exited within the timeout. It stays a zombie, so its process group id
    cannot be reused before `_kill_group` has run."""
    deadline = time.monotonic() + timeout_s
    pause = 0.002
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _kill_group(pgid: int) -> None:
    # A fork racing with a group-wide SIGKILL is restarted by the kernel, so the children of a
    # fork bomb cannot slip out; the second round is for good measure.
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.001)


def _read_report(fd: int) -> dict:
    """The bootstrap writes one JSON line with the active layers, then `finished` when the program
    ran to its end. Non-blocking: a writer that escaped cannot hold the harness."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    report: dict = {}
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line == FINISHED:
            report[FINISHED] = True
        elif line.startswith("{") and "layers" not in report:
            try:
                report["layers"] = json.loads(line)["layers"]
            except (ValueError, KeyError):
                pass
    return report


def _tail(path: str, chars: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 4 * chars))
        return handle.read().decode("utf-8", "replace")[-chars:]


def _last_error_line(stderr: str) -> str | None:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _verdict(timed_out: bool, returncode: int, finished: bool, stderr: str, limits: SandboxLimits) -> tuple[str, str | None]:
    if timed_out:
        return "timeout", f"timeout: wall-clock limit of {limits.wall_s:g} s reached"
    if returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return "cpu_limit", f"CPU-time limit of {limits.cpu_s} s reached ({name})"
        return "crashed", f"killed by signal {name}"
    error = _last_error_line(stderr)
    if returncode == 0:
        if finished:
            return "passed", None
        return "failed", "the program exited before its last line ran (exit() or os._exit() before the tests)"
    if error and error.startswith("MemoryError"):
        return "memory_limit", f"memory limit of {limits.memory_mb} MiB reached (MemoryError)"
    if error and "sandbox:" in error:
        return "refused", error
    return "failed", error or f"exit code {returncode}"


def _bootstrap(workdir: str, limits: SandboxLimits, report_fd: int) -> str:
    """Source of the trusted prelude the sandboxed interpreter runs before the program."""
    settings = {
        "workdir": os.path.realpath(workdir), "report_fd": report_fd, "cpu_s": limits.cpu_s,
        "memory": limits.memory_mb << 20, "file": limits.file_mb << 20, "processes": limits.processes,
        "open_files": limits.open_files, "audit_hook": limits.audit_hook,
    }
    return _BOOTSTRAP.replace("SETTINGS = None", f"SETTINGS = {settings!r}", 1)


# The prelude runs in the sandboxed interpreter: namespaces, Landlock, rlimits, audit hook, then
# the program in a fresh __main__. Kept as source text so the sandbox needs no file of its own.
_BOOTSTRAP = r'''
import os, sys, json, resource
SETTINGS = None

def _namespaces():
    """A user + network namespace; uid and gid map onto themselves so files keep their owner."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
    except Exception:
        return None
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(0x10000000 | 0x40000000) == 0:  # CLONE_NEWUSER | CLONE_NEWNET
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
        except OSError:
            pass
        return "user+network namespace"
    if libc.unshare(0x40000000) == 0:
        return "network namespace"
    return None

def _read_roots():
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sys.path if p and os.path.isdir(p))
    roots.update(("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/usr/share/zoneinfo",
                  "/etc/localtime", "/etc/ld.so.cache"))
    return sorted(os.path.realpath(r) for r in roots if os.path.exists(r))

DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")

def _landlock(workdir, read_roots):
    try:
        import ctypes, struct
        libc = ctypes.CDLL(None, use_errno=True)
    except Exception:
        return None
    syscall, L = libc.syscall, ctypes.c_long
    abi = syscall(L(444), None, L(0), L(1))  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi < 1:
        return None
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, with no rule allowing any port
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = ctypes.create_string_buffer(struct.pack("QQQ", fs, net, scoped)[:size], size)
    ruleset = syscall(L(444), attr, L(size), L(0))
    if ruleset < 0:
        return None
    file_rights = fs & (1 | 2 | 4 | 1 << 14 | 1 << 15)  # execute, write, read, truncate, ioctl
    read = 1 | 4 | 8  # execute, read file, read dir
    def allow(path, rights):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        if not os.path.isdir(path):
            rights &= file_rights
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights & fs, fd), 12)
        syscall(L(445), L(ruleset), L(1), rule, L(0))  # landlock_add_rule(PATH_BENEATH)
        os.close(fd)
    for root in read_roots:
        allow(root, read)
    for device in DEVICES:
        allow(device, 2 | 4)
    allow(workdir, fs)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if syscall(L(446), L(ruleset), L(0)) != 0:  # landlock_restrict_self
        return None
    parts = ["files", "TCP" if net else "", "signals" if scoped else ""]
    return f"landlock ABI {abi} ({', '.join(p for p in parts if p)})"

def _user_tasks(uid):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as handle:
                    status = dict(line.split(":", 1) for line in handle if ":" in line)
                if int(status["Uid"].split()[0]) == uid:
                    count += int(status.get("Threads", "1"))
            except (OSError, KeyError, ValueError):
                pass
    return count

def _rlimits(settings, namespace, user_tasks):
    def limit(resource_id, soft, hard=None):
        try:
            resource.setrlimit(resource_id, (soft, soft if hard is None else hard))
        except (ValueError, OSError):
            pass
    limit(resource.RLIMIT_CPU, settings["cpu_s"], settings["cpu_s"] + 1)
    limit(resource.RLIMIT_AS, settings["memory"])
    limit(resource.RLIMIT_FSIZE, settings["file"])
    limit(resource.RLIMIT_NOFILE, settings["open_files"])
    limit(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC counts every task of the uid: inside a user namespace only the sandbox's own,
    # outside it all of the user's, so the limit there is what already runs plus the allowance.
    limit(resource.RLIMIT_NPROC, settings["processes"] + user_tasks)
    layers = ["rlimits (cpu, memory, file size, open files)"]
    if os.getuid() != 0:
        layers.append("process count (RLIMIT_NPROC)")
    return layers

def _guard(workdir, read_roots):
    """The audit hook. It works on functions bound here, before the program runs, so rebinding
    os.path.realpath or os.lstat from the program does not change what it sees."""
    import posix, _stat
    lstat, readlink, getcwd, fspath, S_ISLNK = posix.lstat, posix.readlink, posix.getcwd, posix.fspath, _stat.S_ISLNK
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    encoding = sys.getfilesystemencoding()
    READ_ROOTS = tuple(read_roots) + (workdir,)
    DEVICES_ = frozenset(DEVICES)
    REFUSED = frozenset((
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "subprocess.Popen",
        "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
        "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
        "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
        "sys.settrace", "sys.setprofile", "sys.addaudithook", "gc.get_objects", "gc.get_referrers",
        "gc.get_referents", "os.setns" , "os.unshare",
    ))
    BLOCKED_MODULES = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "cffi", "_cffi_backend"))
    PATH_ARGUMENTS = {  # event -> positions of the paths it changes
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
        "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
        "os.chflags": (0,), "os.lchflags": (0,), "os.lchmod": (0,), "os.lchown": (0,), "os.mkfifo": (0,),
        "os.mknod": (0,), "shutil.rmtree": (0,),
    }

    def resolve(path):
        if isinstance(path, bytes):
            path = path.decode(encoding, "surrogateescape")
        path = path if path.startswith("/") else getcwd() + "/" + path
        parts, resolved, hops = path.split("/"), "", 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                resolved = resolved.rsplit("/", 1)[0]
                continue
            candidate = resolved + "/" + part
            try:
                is_link = S_ISLNK(lstat(candidate).st_mode)
            except OSError:
                is_link = False
            if is_link and hops < 40:
                hops += 1
                target = readlink(candidate)
                parts = target.split("/") + parts
                if target.startswith("/"):
                    resolved = ""
                continue
            resolved = candidate
        return resolved or "/"

    def inside(path, roots):
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def refuse(what):
        raise PermissionError(f"sandbox: {what} refused")

    def hook(event, args):
        if event in REFUSED:
            refuse(event)
        if event == "open":
            target, mode, flags = args
            if isinstance(target, int) or target is None:
                return
            path = resolve(fspath(target))
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
            if path in DEVICES_:
                return
            if writing and not inside(path, (workdir,)):
                refuse(f"writing {path} (outside the work directory)")
            if not writing and not inside(path, READ_ROOTS):
                refuse(f"reading {path} (outside the work directory and the interpreter)")
        elif event in PATH_ARGUMENTS:
            for position in PATH_ARGUMENTS[event]:
                target = args[position]
                if isinstance(target, int):
                    continue
                path = resolve(fspath(target))
                if not inside(path, (workdir,)):
                    refuse(f"{event} on {path} (outside the work directory)")
        elif event == "import" and args[0].partition(".")[0] in BLOCKED_MODULES:
            refuse(f"importing {args[0]}")
        elif event.startswith("ctypes."):
            refuse(event)
        elif event == "object.__setattr__" and args[1] in ("__code__", "__closure__", "__globals__"):
            refuse(f"setting {args[1]}")

    sys.addaudithook(hook)

def _main():
    settings = SETTINGS
    workdir = settings["workdir"]
    with open("program.py", "rb") as handle:
        source = handle.read()
    read_roots = _read_roots()
    namespace = _namespaces()
    user_tasks = 0 if namespace == "user+network namespace" else _user_tasks(os.getuid())  # before Landlock hides /proc
    layers = ["separate process group", "wall clock", "clean environment", "throw-away work directory"]
    layers += [namespace] if namespace else []
    landlock = _landlock(workdir, read_roots)
    layers += [landlock] if landlock else []
    layers += _rlimits(settings, namespace, user_tasks)
    for name in [m for m in sys.modules if m.partition(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # imported for the layers above; the program must import it anew (refused)
    code = compile(source, "program.py", "exec")  # a syntax error ends it here, reported as usual
    report = settings["report_fd"]
    if settings["audit_hook"]:
        layers.append("audit hook")
        _guard(workdir, read_roots)
    os.write(report, (json.dumps({"layers": layers}) + "\n").encode())
    import types
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    main.__file__ = os.path.join(workdir, "program.py")
    sys.modules["__main__"] = main
    exec(code, main.__dict__)
    os.write(report, b"finished\n")

_main()
'''
