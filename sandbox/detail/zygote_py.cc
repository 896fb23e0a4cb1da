// The Python side of a zygote: the program that python3 runs inside the prepared namespaces. It
// pre-imports modules once, then forks one fresh child per run and applies the per-run isolation.
#include "sandbox/detail/zygote.h"

namespace k2::sandbox::detail {

// Protocol (host <-> zygote, an AF_UNIX SOCK_SEQPACKET socket on fd 3):
//   zygote -> host: b"ready" once the preloads are imported.
//   host -> zygote: a k2_run_params struct (zygote_abi.h) with SCM_RIGHTS fds [request memfd, stdin,
//   stdout, stderr, status, cgroup.procs...]. The request memfd holds one line of JSON metadata (files,
//   fetch_files; empty when there are none) and then the program's bytes.
//   EOF from the host: the zygote exits, which (as PID 1 of its namespace) kills every run it started.
// The serve loop is native (zygote_helper.c, loaded from the memfd on fd 6): per run it calls
// unshare(CLONE_NEWPID) and forks once, so the child is PID 1 of a fresh PID namespace; the child joins
// the run's cgroups, unshares mount/IPC/UTS/cgroup (and network) namespaces and mounts the work tmpfs,
// /tmp, /dev/shm and /proc, still in C, then returns here. Python writes the input files, sets rlimits,
// drops every capability (bounding set, securebits, setuid to the unprivileged uid), sets
// no_new_privs, loads the seccomp filter and only then runs the untrusted code in place (bash: execve).
// The zygote reaps it and writes its wait status to the run's status pipe. With fetch_files, PID 1
// instead forks the program, waits for it, kills what is left and reads the files (no symlinks
// followed, regular files only, size-capped).
const char* ZygoteScript() {
  return R"PY(
import os, sys, json, signal, ctypes, base64, resource, gc, stat
CFG = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 24, 28, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 47, 4, 22, 2
OUT_FDS, OUT_PROBE_FD, OUT_SIZE, CHILD_PRIVILEGED, CHILD_DROPPED, CHILD_PROBE = 17, 48, 64, 5, 1, 7  # zygote_abi.h

class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

with os.fdopen(4, "rb") as f:
    BPF = f.read()
# The zygote's filter (loaded before serving, inherited by every run) and each run's own (zygote.cc).
ZLEN = int.from_bytes(BPF[:4], sys.byteorder)
ZBPF_BUF = ctypes.create_string_buffer(BPF[4:4 + ZLEN], ZLEN)
ZFPROG = SockFprog(ZLEN // 8, ctypes.cast(ZBPF_BUF, ctypes.c_void_p))
BPF = BPF[4 + ZLEN:]
BPF_BUF = ctypes.create_string_buffer(BPF, len(BPF))
FPROG = SockFprog(len(BPF) // 8, ctypes.cast(BPF_BUF, ctypes.c_void_p))
CAP_LAST = int(open("/proc/sys/kernel/cap_last_cap").read())
# PyDLL: the GIL stays held while the serve loop runs and forks (as os.fork holds it).
HELPER = ctypes.PyDLL("/proc/self/fd/6")
os.close(6)
HELPER.k2_zygote_serve.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                   ctypes.c_void_p]
HELPER.k2_zygote_serve.restype = ctypes.c_int
HELPER.k2_zygote_learn.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
HELPER.k2_zygote_learn.restype = ctypes.c_int
HELPER.k2_probe_report.argtypes = [ctypes.c_int]
HELPER.k2_probe_report.restype = ctypes.c_int64
HELPER.k2_learned_stats.argtypes = [ctypes.c_void_p]
HELPER.k2_learned_stats.restype = None
OUT = (ctypes.c_int64 * OUT_SIZE)()

def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))

for m in CFG["preload"]:
    try:
        __import__(m)
    except Exception:
        pass
import builtins, traceback, random, atexit

def write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]

def safe_open_in(dirfd, rel, flags, mode=0o644, create_dirs=False, uid=0, gid=0):
    # Walks rel component by component with O_NOFOLLOW so no symlink planted by the program is followed.
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or rel.startswith("/"):
        raise ValueError("bad path %r" % rel)
    fd = os.dup(dirfd)
    try:
        for p in parts[:-1]:
            try:
                nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create_dirs:
                    raise
                os.mkdir(p, 0o755, dir_fd=fd)
                os.chown(p, uid, gid, dir_fd=fd, follow_symlinks=False)
                nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=fd)
    finally:
        os.close(fd)

def pid1():
    # PID 1 of a fresh PID namespace, its namespaces and mounts already set up by the helper, still
    # privileged inside the zygote's user namespace. OUT: the run's k2_run_params, then its fds.
    req_fd, in_fd, out_fd, err_fd, st_fd = OUT[OUT_FDS:OUT_FDS + 5]
    try:
        _, _, _, _, cpu_s, nofile, fsize, lang, fetch = OUT[0:9]
        data = os.pread(req_fd, os.fstat(req_fd).st_size, 0)
        os.close(req_fd)
        nl = data.index(b"\n")
        meta = json.loads(data[:nl]) if nl else {}
        code = data[nl + 1:]
        uid, gid = CFG["uid"], CFG["gid"]
        files = meta.get("files")
        if files:
            wfd = os.open("/work", os.O_RDONLY | os.O_DIRECTORY)
            rfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
            for path, b64 in files.items():
                # Relative: under /work; absolute: from the sandbox's root (the host checked the prefix).
                base, rel = (rfd, path.lstrip("/")) if path.startswith("/") else (wfd, path)
                fd = safe_open_in(base, rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, True, uid, gid)
                write_all(fd, base64.b64decode(b64))
                os.fchown(fd, uid, gid)
                os.close(fd)
            os.close(wfd)
            os.close(rfd)
        limits = (cpu_s, nofile, fsize)
        if not fetch:
            run_program(code, lang, limits, in_fd, out_fd, err_fd)  # fast path: PID 1 becomes the program
        # With fetch_files PID 1 stays ours: it reaps, waits for the program, then reads /work.
        pid = os.fork()
        if pid == 0:
            os.close(st_fd)
            run_program(code, lang, limits, in_fd, out_fd, err_fd)
        os.close(in_fd); os.close(out_fd); os.close(err_fd)
        main_status = None
        while main_status is None:
            try:
                p, st = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if p == pid:
                main_status = st
        try:
            os.kill(-1, signal.SIGKILL)  # orphans of the program; PID 1 itself is spared
        except OSError:
            pass
        res = {"main_wait": main_status if main_status is not None else -1}
        res["files"], res["fetch_errors"] = fetch_files(meta.get("fetch", []), meta.get("fetch_cap", 0))
        write_all(st_fd, (json.dumps(res) + "\n").encode())
        os._exit(0)
    except BaseException as e:
        try:
            write_all(st_fd, (json.dumps({"setup_error": repr(e)}) + "\n").encode())
        finally:
            os._exit(127)

def run_program(code, lang, limits, in_fd, out_fd, err_fd):
    # Drops every privilege, then runs the untrusted code in this process. Never returns.
    uid, gid = CFG["uid"], CFG["gid"]
    cpu, nofile, fsize = limits
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capability sets
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.dup2(in_fd, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.chdir("/work")
    if lang == 1:
        script_fd = os.memfd_create("main.sh", 0)
        write_all(script_fd, code)
        os.lseek(script_fd, 0, 0)
        os.dup2(script_fd, 3)
        os.closerange(4, 1 << 20)
    else:
        os.closerange(3, 1 << 20)
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(FPROG), 0, 0), "seccomp")
    if lang == 1:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores SIGPIPE; bash expects the default
        os.execve("/bin/bash", ["bash", "/dev/fd/3"], ENV)
    os._exit(run_python(code))

def run_dropped(probe_fd=-1):
    # The fast path: the helper already dropped every privilege and loaded the seccomp filter; the
    # request (an empty metadata line, then the program) is on fd 3. A learning probe (probe_fd >= 0,
    # trusted code before the zygote serves) takes the same path and then reports the pages it touched.
    data = os.pread(3, os.fstat(3).st_size, 0)
    os.close(3)
    rc = run_python(data[data.index(b"\n") + 1:])
    if probe_fd >= 0:
        rc = 0 if HELPER.k2_probe_report(probe_fd) >= 0 else 1
    os._exit(rc)

def run_python(code):
    # Runs the untrusted program in this (unprivileged) process as __main__ and finishes like python3
    # (threads joined, atexit handlers, streams flushed); returns the exit status.
    # The random module reseeded itself from os.urandom in PyOS_AfterFork_Child (its at-fork hook).
    sys.argv = [PROGRAM]
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": PROGRAM}
    rc = 0
    # The program is also a file, as SandboxFusion runs it: tracebacks show its lines, inspect.getsource
    # works, open(__file__) reads it. (Not in the zygote's warm-up or probes: /work is read-only there.)
    try:
        fd = os.open(PROGRAM, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, code)
        finally:
            os.close(fd)
    except OSError:
        pass
    try:
        # Compiling from str skips the tokenizer's encoding detection (~100 copy-on-write faults); only
        # a source with a coding cookie in its first two lines (PEP 263) or invalid UTF-8 goes as bytes.
        src = code
        nl = code.find(b"\n")
        nl2 = code.find(b"\n", nl + 1) if nl >= 0 else -1
        if b"coding" not in (code if nl2 < 0 else code[:nl2]):
            try:
                src = code.decode("utf-8")
            except UnicodeDecodeError:
                pass
        exec(compile(src, PROGRAM, "exec"), g)
    except SystemExit as e:
        c = e.code
        if c is None:
            rc = 0
        elif isinstance(c, int):
            rc = c & 0xff
        else:
            try:
                print(c, file=sys.stderr)
            except Exception:
                pass
            rc = 1
    except BaseException:
        try:
            traceback.print_exc()
        except Exception:
            pass
        rc = 1
    # As at interpreter exit: wait for threads only when the program imported threading (importing it
    # here would cost each run a module load: hundreds of copy-on-write pages).
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
    except BaseException:
        pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except BaseException:
            pass
    return rc

def fetch_files(paths, cap):
    out, errors = {}, {}
    wfd = os.open("/work", os.O_RDONLY | os.O_DIRECTORY)
    rfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    total = 0
    for p in paths:
        try:
            base, rel = (rfd, p.lstrip("/")) if p.startswith("/") else (wfd, p)
            fd = safe_open_in(base, rel, os.O_RDONLY | os.O_NONBLOCK)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ValueError("not a regular file")
                chunks, n = [], 0
                while True:
                    b = os.read(fd, 1 << 20)
                    if not b:
                        break
                    n += len(b)
                    if total + n > cap:
                        raise ValueError("fetch_files exceed %d bytes" % cap)
                    chunks.append(b)
                total += n
                out[p] = base64.b64encode(b"".join(chunks)).decode()
            finally:
                os.close(fd)
        except Exception as e:
            errors[p] = str(e)
    os.close(wfd)
    os.close(rfd)
    return out, errors

PROGRAM = "/work/main.py"

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
       "PYTHONDONTWRITEBYTECODE": "1", "USER": "sandbox"}

def drop_inheritable_privileges():
    # Done once here rather than per run (every page a run touches costs a copy-on-write fault): the
    # zygote keeps its effective capabilities for the per-run mounts, but the empty bounding set, the
    # cleared ambient set and the locked securebits pass to every child, so the program (after setuid)
    # can never regain a capability, even by executing a setuid-root or file-capability binary.
    os.setgroups([])
    for c in range(CAP_LAST + 1):
        check(libc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "capbset_drop")
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")
    # NOROOT|NOROOT_LOCKED|NO_SETUID_FIXUP_LOCKED|KEEP_CAPS_LOCKED: uid 0 can never regain capabilities.
    check(libc.prctl(PR_SET_SECUREBITS, 0x1 | 0x2 | 0x8 | 0x20, 0, 0, 0), "securebits")
    os.environ.clear()
    os.environ.update(ENV)

WARM_UP = """
import sys
def f(n):
    return n * 2
print(sum(f(i) for i in range(3)), [1, 2.5], {"a": "b"}, repr(sys.stdin.read()), input.__name__, end="\\n")
1 / 0
"""

def warm_up():
    # What a program's first compile, exec, print, stdin read and traceback initialize lazily (codec
    # lookups, the std streams' encoders and buffers, compiler and traceback state) is created here once
    # instead of in every run: a run then only writes to it, which halves its copy-on-write faults.
    # stdin, stdout and stderr are /dev/null here.
    run_python(WARM_UP.encode())

# What the learning probes run (zygote_helper.c, "Learned prefault"): a small program of the usual shape.
PROBE = """
import sys
def f(n):
    return n * 2
print(f(1) - 1)
"""

def learn():
    # Returns the learned prefault set's description; in a probe child it runs the probe and exits.
    # After gc.freeze, so the probes see the heap the runs will see.
    info = {"prefault": CFG["prefault"], "ranges": 0, "write_pages": 0, "read_pages": 0, "pinned_pages": 0,
            "inherited_pages": 0}
    if not CFG["prefault"]:
        return info
    r = HELPER.k2_zygote_learn(PROBE.encode(), CFG["probes"], CFG["prefault"], ctypes.addressof(OUT))
    if r == CHILD_PROBE:
        run_dropped(OUT[OUT_PROBE_FD])
    if r < 0:
        info["error"] = os.strerror(-r)
    stats = (ctypes.c_int64 * 5)()
    HELPER.k2_learned_stats(ctypes.addressof(stats))
    (info["ranges"], info["write_pages"], info["read_pages"], info["pinned_pages"],
     info["inherited_pages"]) = stats
    return info

def main():
    drop_inheritable_privileges()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    if CFG["warm_up"]:
        warm_up()
    # Forked children would otherwise copy most of the heap: the collector touches every object's header.
    gc.collect()
    gc.freeze()
    info = learn()
    # From here on the zygote and every run are under the zygote's filter (the pinning above used
    # io_uring, which it denies); a run adds its own filter on top (seccomp.h).
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(ZFPROG), 0, 0), "zygote seccomp")
    os.write(3, b"ready " + json.dumps(info).encode())
    # Returns only in a run's child (> 0) or when the host is gone (0) or on an error (< 0).
    r = HELPER.k2_zygote_serve(3, own_pidns, CFG["uid"], CFG["gid"], ctypes.addressof(FPROG), ctypes.addressof(OUT))
    if r == CHILD_DROPPED:
        run_dropped()
    elif r == CHILD_PRIVILEGED:
        pid1()
    os._exit(0)

main()
)PY";
}

}  // namespace k2::sandbox::detail
