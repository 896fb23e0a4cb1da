// Grading helpers on top of Sandbox: stdin/expected-stdout cases and Python assert-based tests with a
// tamper-evident pass signal (a random nonce printed only after the last assert).
#include <random>

#include "core/json.h"

#include "sandbox/sandbox.h"

namespace k2::sandbox {

const char* CaseStatusName(CaseStatus s) {
  switch (s) {
    case CaseStatus::kPassed: return "passed";
    case CaseStatus::kFailed: return "failed";
    case CaseStatus::kTimeout: return "timeout";
    case CaseStatus::kRuntimeError: return "runtime_error";
    case CaseStatus::kMemoryLimit: return "memory_limit";
    case CaseStatus::kOutputLimit: return "output_limit";
    case CaseStatus::kSandboxError: return "sandbox_error";
  }
  return "?";
}

std::string StripTrailing(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t' ||
                   s[n - 1] == '\v' || s[n - 1] == '\f')) {
    --n;
  }
  return s.substr(0, n);
}

namespace {

// Maps a run that did not finish normally to its case status; kOk and kRuntimeError are left to the caller.
CaseStatus FromRun(RunStatus s) {
  switch (s) {
    case RunStatus::kOk: return CaseStatus::kPassed;
    case RunStatus::kRuntimeError: return CaseStatus::kRuntimeError;
    case RunStatus::kTimeout: return CaseStatus::kTimeout;
    case RunStatus::kMemoryLimit: return CaseStatus::kMemoryLimit;
    case RunStatus::kOutputLimit: return CaseStatus::kOutputLimit;
    case RunStatus::kSandboxError: return CaseStatus::kSandboxError;
  }
  return CaseStatus::kSandboxError;
}

std::string FirstDiff(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  auto show = [](const std::string& s, size_t at) {
    std::string part = s.substr(at, 40);
    return "\"" + json(part).get<std::string>() + "\"";
  };
  return "stdout differs at byte " + std::to_string(i) + ": got " + show(got, i) + ", expected " + show(want, i);
}

}  // namespace

std::vector<CaseResult> RunIoCases(Sandbox& sb, const std::string& language, const std::string& code,
                                   const std::vector<IoCase>& cases, const Limits& limits) {
  std::vector<std::future<RunResult>> futs;
  futs.reserve(cases.size());
  for (const auto& c : cases) {
    RunRequest r;
    r.language = language;
    r.code = code;
    r.stdin_data = c.stdin_data;
    r.limits = limits;
    futs.push_back(sb.RunAsync(std::move(r)));
  }
  std::vector<CaseResult> out(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    CaseResult& cr = out[i];
    cr.run = futs[i].get();
    cr.status = FromRun(cr.run.status);
    if (cr.run.status == RunStatus::kOk) {
      std::string got = StripTrailing(cr.run.stdout_data), want = StripTrailing(cases[i].expected_stdout);
      if (got != want) {
        cr.status = CaseStatus::kFailed;
        cr.detail = FirstDiff(got, want);
      }
    } else {
      cr.detail = cr.run.message;
    }
  }
  return out;
}

namespace {

// The assert-test harness: the "program" the sandbox runs for RunAssertTests (Python, trusted, ours).
// It forks the program under test into a child process before it reads anything secret, runs the tests
// itself, and calls the program only through a pipe: function calls, attribute reads and iteration go to
// the child as messages, and every value comes back as plain data (None, bool, int, float, complex, str,
// bytes, list, tuple, set, dict) decoded here into genuine builtins, or as an opaque handle. So the tests'
// comparisons, the builtins they use and the assert statements all live in a process the program cannot
// reach:
//   - the harness is PID 1 of the run's PID namespace (signals without a handler, SIGKILL included, do
//     not reach it from inside) and not dumpable from before the fork (a process of the same uid cannot
//     open its /proc/1/mem, fd/, environ; ptrace and process_vm_readv are denied by seccomp);
//   - the tests and the nonce arrive on stdin, which the harness reads only after the fork; the child
//     replaced its fd 0 with /dev/null before any program code ran, so the program never had them;
//   - a value the program returns is data: an object whose __eq__ always says True arrives as a handle,
//     compared by identity; names the program defines that shadow builtins are not exported, modules it
//     imported are imported afresh here; the program's sys.modules, builtins, print, exit, atexit and
//     frames are its own process's;
//   - after the last assert the harness kills every other process of the namespace, waits for them, and
//     only then prints the nonce: the host's pass condition is exit status 0 with the nonce as the last
//     stdout line. A program that exits, dies or closes the channel early, or fails to load, fails.
// Limits of the approach: arguments must be values (a test passing a function or an object of its own
// to the program fails with a clear error), and a mutated container argument is copied back at top
// level only.
const char* kAssertHarness = R"PY(
def _k2_harness():
    import os, sys, json, signal, ctypes, builtins, types, importlib, traceback, linecache, time
    MAX_MSG = 64 << 20

    class Broken(Exception):
        pass

    def read_exact(fd, n):
        out = bytearray()
        while len(out) < n:
            b = os.read(fd, min(n - len(out), 1 << 20))
            if not b:
                raise Broken("the program under test ended or closed its channel")
            out += b
        return bytes(out)

    def send(fd, obj):
        b = json.dumps(obj).encode()
        b = len(b).to_bytes(8, "little") + b
        while b:
            b = b[os.write(fd, b):]

    def recv(fd):
        n = int.from_bytes(read_exact(fd, 8), "little")
        if n > MAX_MSG:
            raise Broken("a reply of %d bytes" % n)
        return json.loads(read_exact(fd, n))

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0: before the fork, so the child never sees us readable
        sys.stderr.write("[k2 harness] error: prctl(PR_SET_DUMPABLE) failed\n")
        os._exit(1)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
        signal.signal(s, signal.SIG_IGN)
    c2h_r, c2h_w = os.pipe()
    h2c_r, h2c_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(c2h_r)
        os.close(h2c_w)
        fd = os.open("/dev/null", os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        _k2_child(h2c_r, c2h_w, read_exact, send, recv)
        os._exit(1)
    os.close(c2h_w)
    os.close(h2c_r)
    chunks = []
    while True:
        b = os.read(0, 1 << 20)
        if not b:
            break
        chunks.append(b)
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    job = json.loads(b"".join(chunks))
    nonce = job["nonce"].encode()
    tests = job["tests"]
    modname = job["module"]

    def finish(kind, text):
        # Nothing of the program may outlive the verdict: as PID 1, kill(-1) reaches every other process.
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                pass
        try:
            sys.stdout.flush()
        except Exception:
            pass
        if kind is None:
            os.write(1, b"\n" + nonce + b"\n")
            os._exit(0)
        os.write(2, ("\n[k2 harness] %s: %s\n" % (kind, text[-3000:])).encode("utf-8", "replace"))
        os._exit(1)

    exc_types = {}

    def exc_type(name):
        t = getattr(builtins, name, None) if type(name) is str else None
        if isinstance(t, type) and issubclass(t, Exception):
            return t
        name = name if type(name) is str and name.isidentifier() else "ProgramError"
        return exc_types.setdefault(name, type(name, (Exception,), {}))

    def check(cond, what):
        if not cond:
            raise Broken("malformed reply from the program under test: " + what)

    def dec(x, depth=0):
        check(type(x) is list and x and type(x[0]) is str and depth < 400, "value")
        t = x[0]
        if t == "n":
            return None
        check(len(x) >= 2, "value")
        v = x[1]
        if t == "b":
            check(type(v) is bool, "bool")
            return v
        if t in ("i", "f", "s", "y", "Y"):
            check(type(v) is str, "scalar")
            if t == "i":
                check(len(v) < 1 << 20, "int")
                return int(v, 16)
            if t == "f":
                return float.fromhex(v)
            if t == "s":
                return v
            return bytes.fromhex(v) if t == "y" else bytearray.fromhex(v)
        if t == "c":
            check(len(x) == 3 and type(v) is str and type(x[2]) is str, "complex")
            return complex(float.fromhex(v), float.fromhex(x[2]))
        if t in ("l", "t", "S", "F"):
            check(type(v) is list, "sequence")
            items = [dec(e, depth + 1) for e in v]
            return items if t == "l" else tuple(items) if t == "t" else set(items) if t == "S" else frozenset(items)
        if t == "d":
            check(type(v) is list, "dict")
            out = {}
            for kv in v:
                check(type(kv) is list and len(kv) == 2, "dict item")
                out[dec(kv[0], depth + 1)] = dec(kv[1], depth + 1)
            return out
        if t == "h":
            check(len(x) == 4 and type(v) is int and type(x[2]) is str, "handle")
            return Remote(v, x[2][:100])
        check(False, "tag " + repr(t)[:20])

    def enc(v, depth=0):
        if depth > 400:
            raise ValueError("argument nested too deeply")
        if isinstance(v, Remote):
            return ["r", object.__getattribute__(v, "_k2_id")]
        t = type(v)
        if v is None:
            return ["n"]
        if t is bool:
            return ["b", v]
        if t is int:
            return ["i", hex(v)]
        if t is float:
            return ["f", v.hex()]
        if t is complex:
            return ["c", v.real.hex(), v.imag.hex()]
        if t is str:
            return ["s", v]
        if t is bytes:
            return ["y", v.hex()]
        if t is bytearray:
            return ["Y", v.hex()]
        if t in (list, tuple, set, frozenset):
            return [{list: "l", tuple: "t", set: "S", frozenset: "F"}[t], [enc(e, depth + 1) for e in v]]
        if t is dict:
            return ["d", [[enc(k, depth + 1), enc(e, depth + 1)] for k, e in v.items()]]
        raise TypeError("cannot pass a %s to the program under test (only plain values and its own objects)" % t.__name__)

    def rpc(msg):
        send(h2c_w, msg)
        r = recv(c2h_r)
        check(type(r) is list and r and type(r[0]) is str, "reply")
        if r[0] == "exc":
            check(len(r) == 3, "exception")
            raise exc_type(r[1])(str(r[2])[:2000])
        check(r[0] in ("ok", "stop") and len(r) >= 2, "reply")
        return r

    class Remote:
        __slots__ = ("_k2_id", "_k2_type")

        def __init__(self, hid, tname):
            object.__setattr__(self, "_k2_id", hid)
            object.__setattr__(self, "_k2_type", tname)

        def __call__(self, *args, **kwargs):
            r = rpc(["call", self._k2_id, [enc(a) for a in args], {str(k): enc(v) for k, v in kwargs.items()}])
            check(len(r) == 3 and type(r[2]) is list and len(r[2]) == len(args), "call reply")
            for a, m in zip(args, r[2]):
                if m is None:
                    continue
                nv = dec(m)
                if type(a) is type(nv) and type(a) in (list, bytearray):
                    a[:] = nv
                elif type(a) is type(nv) and type(a) in (dict, set):
                    a.clear()
                    a.update(nv)
            return dec(r[1])

        def __getattr__(self, name):
            if name.startswith("_k2_"):
                raise AttributeError(name)
            return dec(rpc(["getattr", self._k2_id, name])[1])

        def __iter__(self):
            it = dec(rpc(["iter", self._k2_id])[1])
            check(isinstance(it, Remote), "iterator")
            while True:
                r = rpc(["next", it._k2_id])
                if r[0] == "stop":
                    return
                yield dec(r[1])

        def __len__(self):
            n = dec(rpc(["len", self._k2_id])[1])
            check(type(n) is int and n >= 0, "len")
            return n

        def __getitem__(self, key):
            return dec(rpc(["getitem", self._k2_id, enc(key)])[1])

        def __contains__(self, x):
            # Compared here: sending x would hand the program the value the test looks for.
            return any(x == e for e in self)

        def __bool__(self):
            b = dec(rpc(["bool", self._k2_id])[1])
            check(type(b) is bool, "bool")
            return b

        def __repr__(self):
            s = dec(rpc(["repr", self._k2_id])[1])
            check(type(s) is str, "repr")
            return s

    try:
        send(h2c_w, {"code": job["code"], "module": modname})
        del job
        r = recv(c2h_r)
        check(type(r) is list and len(r) == 2 and r[0] in ("loaded", "load_error"), "load reply")
        if r[0] == "load_error":
            finish("error", "the program raised while loading:\n" + str(r[1]))
        check(type(r[1]) is dict, "exports")
        g = {"__name__": "__main__", "__builtins__": builtins}
        mod = types.ModuleType(modname)
        for k, e in r[1].items():
            if not k.isidentifier() or k.startswith("__") or hasattr(builtins, k):
                continue  # the tests' builtins stay the real ones
            if type(e) is list and len(e) == 2 and e[0] == "m" and type(e[1]) is str:
                if e[1].split(".")[0] in ("this", "antigravity"):
                    continue
                try:
                    v = sys.modules.get(e[1]) or importlib.import_module(e[1])
                except Exception:
                    continue
            else:
                v = dec(e)
            g[k] = v
            setattr(mod, k, v)
        if modname != "__main__":
            sys.modules[modname] = mod
        code = compile(tests, "<tests>", "exec")
        del tests
        exec(code, g)
    except AssertionError:
        finish("assert", traceback.format_exc())
    except Broken as e:
        # A program killed by its CPU-time limit (RLIMIT_CPU: SIGXCPU) timed out rather than ended: its
        # status is read before finish() reaps it (it closed the channel by dying, so it is a zombie or
        # about to be one; a program that closed the channel and lives on stays "exit").
        for _ in range(50):
            try:
                wpid, wst = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if wpid == pid:
                if os.WIFSIGNALED(wst) and os.WTERMSIG(wst) == signal.SIGXCPU:
                    finish("cpu", "the program under test exceeded its CPU-time limit")
                break
            time.sleep(0.001)
        finish("exit", str(e))
    except BaseException:
        finish("error", traceback.format_exc())
    finish(None, "")

def _k2_child(rfd, wfd, read_exact, send, recv):
    # The program's process: runs it, then serves the harness's calls. Everything from here on is the
    # program's to tamper with; what it sends back is only ever decoded as data.
    import os, sys, builtins, types, traceback, linecache
    job = recv(rfd)
    src = job["code"]
    path = "/work/solution.py"
    # Its source is a file and registered under that name: tracebacks show lines, inspect.getsource works.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        data = src.encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(fd, data):]
        os.close(fd)
    except OSError:
        pass
    linecache.cache[path] = (len(src), None, src.splitlines(True), path)
    g = {"__name__": job["module"], "__builtins__": builtins, "__file__": path}
    del job
    handles = {}

    def handle(v):
        hid = len(handles) + 1
        handles[hid] = v
        return ["h", hid, type(v).__name__, callable(v)]

    def enc(v, depth=0):
        if depth > 200:
            return handle(v)
        if v is None:
            return ["n"]
        if type(v) is bool:
            return ["b", v]
        if isinstance(v, int):
            return ["i", hex(int(v))]
        if isinstance(v, float):
            return ["f", float(v).hex()]
        if isinstance(v, complex):
            return ["c", v.real.hex(), v.imag.hex()]
        if isinstance(v, str):
            return ["s", str(v)]
        if isinstance(v, bytes):
            return ["y", bytes(v).hex()]
        if isinstance(v, bytearray):
            return ["Y", bytes(v).hex()]
        for t, tag in ((list, "l"), (tuple, "t"), (frozenset, "F"), (set, "S")):
            if isinstance(v, t):
                return [tag, [enc(e, depth + 1) for e in v]]
        if isinstance(v, dict):
            return ["d", [[enc(k, depth + 1), enc(e, depth + 1)] for k, e in v.items()]]
        return handle(v)

    def dec(x):
        t = x[0]
        if t == "n":
            return None
        if t == "b" or t == "s":
            return x[1]
        if t == "i":
            return int(x[1], 16)
        if t == "f":
            return float.fromhex(x[1])
        if t == "c":
            return complex(float.fromhex(x[1]), float.fromhex(x[2]))
        if t == "y":
            return bytes.fromhex(x[1])
        if t == "Y":
            return bytearray.fromhex(x[1])
        if t == "r":
            return handles[x[1]]
        if t == "d":
            return {dec(k): dec(v) for k, v in x[1]}
        items = [dec(e) for e in x[1]]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[t](items)

    try:
        exec(compile(src, path, "exec"), g)
    except BaseException:
        send(wfd, ["load_error", traceback.format_exc()[-3000:]])
        os._exit(1)
    exports = {}
    for k, v in list(g.items()):
        if k.startswith("__"):
            continue
        exports[k] = ["m", v.__name__] if isinstance(v, types.ModuleType) else enc(v)
    send(wfd, ["loaded", exports])
    while True:
        msg = recv(rfd)
        op = msg[0]
        try:
            obj = handles[msg[1]]
            if op == "call":
                args = [dec(a) for a in msg[2]]
                r = obj(*args, **{k: dec(v) for k, v in msg[3].items()})
                muts = [enc(a) if type(a) in (list, dict, set, bytearray) else None for a in args]
                reply = ["ok", enc(r), muts]
            elif op == "getattr":
                reply = ["ok", enc(getattr(obj, msg[2]))]
            elif op == "iter":
                reply = ["ok", handle(iter(obj))]
            elif op == "next":
                try:
                    reply = ["ok", enc(next(obj))]
                except StopIteration:
                    reply = ["stop", None]
            elif op == "len":
                reply = ["ok", enc(len(obj))]
            elif op == "getitem":
                reply = ["ok", enc(obj[dec(msg[2])])]
            elif op == "bool":
                reply = ["ok", enc(bool(obj))]
            else:
                reply = ["ok", enc(repr(obj))]
        except BaseException as e:
            reply = ["exc", type(e).__name__, str(e)]
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        send(wfd, reply)

_k2_harness()
)PY";

}  // namespace

CaseResult RunAssertTests(Sandbox& sb, const std::string& language, const std::string& code,
                          const std::string& test_code, const Limits& limits, const std::string& module_name) {
  CaseResult cr;
  if (language != "python") {
    cr.status = CaseStatus::kSandboxError;
    cr.detail = "RunAssertTests: language: expected \"python\", got \"" + language + "\"";
    return cr;
  }
  std::random_device rd;
  std::string nonce;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) nonce += hex[rd() & 15];
  RunRequest r;
  r.language = "python";
  r.limits = limits;
  r.code = kAssertHarness;
  // Invalid UTF-8 in the program or the tests is replaced (U+FFFD) rather than refused: it could not run.
  r.stdin_data = json{{"code", code}, {"tests", test_code}, {"nonce", nonce}, {"module", module_name}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  cr.run = sb.Run(r);
  cr.status = FromRun(cr.run.status);
  // The harness's verdict: its last stderr line "[k2 harness] <kind>: ..." (the program can write such a
  // line too, which only changes how a failure is labelled: a pass needs the nonce).
  const std::string& err = cr.run.stderr_data;
  size_t mark = err.rfind("\n[k2 harness] ");
  std::string kind = mark == std::string::npos ? "" : err.substr(mark + 14, err.find(':', mark + 14) - mark - 14);
  if (cr.run.status == RunStatus::kOk) {
    std::string out = StripTrailing(cr.run.stdout_data);
    size_t nl = out.rfind('\n');
    std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
    if (last != nonce) {
      cr.status = CaseStatus::kFailed;
      cr.detail = "the harness did not confirm that every assert ran";
    }
  } else if (cr.run.status == RunStatus::kRuntimeError && kind == "cpu") {
    cr.status = CaseStatus::kTimeout;
    cr.detail = "CPU-time limit of " + std::to_string(limits.cpu_s) + " s exceeded by the program under test";
  } else if (cr.run.status == RunStatus::kRuntimeError) {
    cr.status = kind == "error" ? CaseStatus::kRuntimeError : CaseStatus::kFailed;
    cr.detail = kind == "assert" ? "an assert failed"
                : kind == "exit" ? "the program under test ended before the tests did"
                : kind == "error" ? "an exception was raised" : cr.run.message;
    std::string tail = err.size() > 600 ? err.substr(err.size() - 600) : err;
    cr.detail += ": " + tail;
  } else {
    cr.detail = cr.run.message;
  }
  return cr;
}

}  // namespace k2::sandbox
