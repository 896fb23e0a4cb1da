/* The zygote's native half: its serve loop (receive a run, fork PID 1 of a fresh PID namespace, reap
   and report) and a run's privileged namespace setup, in C rather than Python.

   Why C: on VMs where page faults and TLB flushes are expensive, a run's cost is the number of zygote
   pages that it and the zygote write after the fork (each is a copy-on-write fault). Python touches
   hundreds of objects per step; this loop touches a few pages of stack and static data, so the zygote
   itself takes almost no faults between forks and the child starts its setup without copying.

   Loaded by the zygote's Python (zygote_py.cc) with ctypes.PyDLL from a memfd (so the GIL stays held):
   built as a shared module and embedded into k2gym_sandbox (sandbox/CMakeLists.txt). Single-threaded
   use only (the zygote has one thread). Uses libc and, in the child, PyOS_AfterFork_Child. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>

#include "sandbox/detail/zygote_abi.h"

#define K2_EXPORT __attribute__((visibility("default")))

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { kMaxRuns = 4096 };

/* Runs in flight: PID 1 of each run and the status pipe its wait status goes to (dense array). */
static struct {
  pid_t pid;
  int status_fd;
} g_runs[kMaxRuns];
static int g_nruns;

static void write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* ---- Learned prefault --------------------------------------------------------------------------------
   Why: on a VM where each page fault is a trap through the hypervisor (and each copy-on-write fault also
   a TLB flush), a run's child pays ~20 us per zygote page it first writes and ~40 us per fault on the
   interpreter's text, but breaking the same copy-on-write sharing (or mapping the same file pages) in one
   madvise(MADV_POPULATE_WRITE / _READ) call costs a few us per page. Which pages a run touches is nearly
   the same every time (the same interpreter state, the same allocator pools, the same code), so the
   zygote learns it once: it forks a few probe children that run a small program exactly as a run does
   (k2_zygote_learn), each reports the pages it wrote or mapped from files (k2_probe_report, from
   /proc/self/pagemap), and the pages seen in most probes become ranges that every run's child populates
   right after the fork (prefault). It changes no content, only when the copies are made: a page that a
   run does not touch after all costs one extra copy, a page it touches that was not learned faults as
   before. The probes run trusted code before the zygote serves anything; untrusted runs never report. */
enum { kMaxRanges = 4096, kPage = 4096 };
enum { kRecWrite = 1, kRecRead = 2 }; /* low bits of a page-aligned probe record */
struct k2_range {
  uintptr_t start;
  uint32_t pages;
  uint32_t write; /* 1: MADV_POPULATE_WRITE (anonymous copy), 0: MADV_POPULATE_READ (file page);
                     2: written, but pinned in the zygote (below), so the fork has copied it already;
                     3: a file page that the fork maps into the child already (inherit_file_pages) */
};
static struct k2_range g_ranges[kMaxRanges];
static int g_nranges;
/* ranges, pages to write, pages to read, written pages pinned, file pages inherited */
static int64_t g_learned[5];

/* In a run's child, first thing after the fork. Errors are ignored: a range that cannot be populated
   (unmapped since, say) just faults as it would have. */
static void prefault(void) {
  for (int i = 0; i < g_nranges; ++i) {
    if (g_ranges[i].write >= 2) continue;
    (void)madvise((void*)g_ranges[i].start, (size_t)g_ranges[i].pages * kPage,
                  g_ranges[i].write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
  }
}

/* ---- Pinned written pages ------------------------------------------------------------------------------
   Why: even populated in one madvise, a copy-on-write copy in the child still clears the shared entry and
   flushes the TLB for that page (a hypercall on the development VM: ~4.5 us of the ~8 us a copy costs),
   and the zygote, whose entries the fork write-protected, takes a fault of its own when it writes the page
   again. The kernel makes no copy-on-write sharing of an anonymous page that is pinned for DMA: fork
   copies it into the child at once (a fresh page, no fault, no flush) and leaves the parent's entry
   writable. io_uring's registered buffers are such pins (FOLL_LONGTERM), so the zygote registers its
   learned written ranges as buffers of an io_uring instance that it never submits to, and the child skips
   them in prefault(). Only the zygote holds the ring (each child closes its copy of the fd first thing,
   and the program's seccomp filter denies io_uring); the content of every page is what it was, and a
   page that is no longer pinned (freed and reused since) is shared and copied on write as before. The
   copies are made by the zygote's fork, so they are charged to the zygote's memory cgroup rather than the
   run's (a fixed ~0.7 MB per run in flight, not under the program's control). Pins count against the
   RLIMIT_MEMLOCK of the zygotes' host user (all its zygotes together); without io_uring or when the
   registration fails, prefault() copies them as before. */
static int g_pin_ring = -1;

static void pin_written(void) {
  if (g_pin_ring >= 0) {
    close(g_pin_ring); /* a re-learn: the earlier ring's pins go with it */
    g_pin_ring = -1;
  }
  int n = 0;
  for (int i = 0; i < g_nranges; ++i) n += g_ranges[i].write != 0;
  if (n == 0) return;
  struct iovec* iov = mmap(NULL, sizeof(struct iovec) * (size_t)n, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (iov == MAP_FAILED) return;
  int k = 0;
  for (int i = 0; i < g_nranges; ++i) {
    if (!g_ranges[i].write) continue;
    iov[k].iov_base = (void*)g_ranges[i].start;
    iov[k].iov_len = (size_t)g_ranges[i].pages * kPage;
    ++k;
  }
  struct io_uring_params prm;
  memset(&prm, 0, sizeof prm);
  int ring = (int)syscall(SYS_io_uring_setup, 1, &prm); /* O_CLOEXEC */
  if (ring >= 0 && syscall(SYS_io_uring_register, ring, IORING_REGISTER_BUFFERS, iov, (unsigned)k) == 0) {
    g_pin_ring = ring;
    for (int i = 0; i < g_nranges; ++i) {
      if (g_ranges[i].write) g_ranges[i].write = 2;
    }
    g_learned[3] = g_learned[1];
  } else if (ring >= 0) {
    close(ring);
  }
  munmap(iov, sizeof(struct iovec) * (size_t)n);
}


static int read_all(int fd, char* buf, size_t cap, size_t* len) {
  *len = 0;
  while (*len < cap) {
    ssize_t n = read(fd, buf + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return 0;
    *len += (size_t)n;
  }
  return -EFBIG;
}

static uintptr_t parse_hex(const char** p) {
  uintptr_t v = 0;
  for (;; ++*p) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return v;
    v = v * 16 + (uintptr_t)d;
  }
}

/* /proc/self/maps into a fresh 1 MiB mapping (NUL-terminated), or -errno. */
static int read_maps(char** text, size_t* len) {
  const size_t cap = 1 << 20;
  char* buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return -errno;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  int r = fd < 0 ? -errno : read_all(fd, buf, cap - 1, len);
  if (fd >= 0) close(fd);
  if (r != 0) {
    munmap(buf, cap);
    return r;
  }
  buf[*len] = 0;
  *text = buf;
  return 0;
}

/* ---- Inherited file pages ------------------------------------------------------------------------------
   Why: fork copies no page-table entries of a private file mapping that has no anonymous pages (code,
   read-only data): "a fault will fill them". So each child faulted in the interpreter's and the
   libraries' code again (from the first instructions after the fork, before any prefault could run), and
   then mapped the learned file pages with one madvise(MADV_POPULATE_READ) per range: ~1,000 pages and ~70
   calls per run. A mapping with an anonymous page (an anon_vma) has all its entries copied instead, and
   copying an entry at fork costs a fraction of mapping it again in the child. So the zygote maps the learned
   file pages once in itself and gives each such mapping one anonymous page: it rewrites the first byte of
   the mapping with its own value through /proc/self/mem, which makes a private copy of that page (the
   kernel's copy-on-write for a forced write; the content is unchanged). The children then inherit every
   file page the zygote has mapped and skip those ranges in prefault(). Where /proc/self/mem cannot write
   (a kernel built to refuse forced writes) the ranges stay in the prefault. */
static void inherit_file_pages(void) {
  char* maps = NULL;
  size_t len = 0;
  if (read_maps(&maps, &len) != 0) return;
  int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  for (const char* p = maps; mem >= 0 && *p;) {
    const char* eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    uintptr_t lo = parse_hex(&p);
    ++p;
    uintptr_t hi = parse_hex(&p);
    ++p;
    /* A private, readable, not writable mapping of a file: code and read-only data. */
    const int eligible = p[0] == 'r' && p[1] != 'w' && p[3] == 'p' && memchr(p, '/', (size_t)(eol - p)) != NULL;
    p = *eol ? eol + 1 : eol;
    if (!eligible) continue;
    int any = 0;
    for (int i = 0; i < g_nranges; ++i) {
      any |= g_ranges[i].write == 0 && g_ranges[i].start >= lo && g_ranges[i].start < hi;
    }
    if (!any) continue;
    unsigned char b;
    if (pread(mem, &b, 1, (off_t)lo) != 1 || pwrite(mem, &b, 1, (off_t)lo) != 1) continue;
    for (int i = 0; i < g_nranges; ++i) {
      struct k2_range* r = &g_ranges[i];
      if (r->write != 0 || r->start < lo || r->start >= hi) continue;
      (void)madvise((void*)r->start, (size_t)r->pages * kPage, MADV_POPULATE_READ);
      r->write = 3;
      g_learned[4] += r->pages;
    }
  }
  if (mem >= 0) close(mem);
  munmap(maps, 1 << 20);
}

/* In a probe child, after its program: writes one uint64 per page it wrote (a present, exclusively
   mapped anonymous page of a writable mapping: copied from the zygote or newly allocated; | kRecWrite) or
   mapped from a file (| kRecRead), in address order, to fd. Its own buffers are left out. Returns the
   number of records or -errno. */
K2_EXPORT int64_t k2_probe_report(int fd) {
  const size_t maps_cap = 1 << 20, rec_cap = 1 << 12;
  char* maps = mmap(NULL, maps_cap + rec_cap * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (maps == MAP_FAILED) return -errno;
  uint64_t* rec = (uint64_t*)(maps + maps_cap);
  const uintptr_t own_lo = (uintptr_t)maps, own_hi = own_lo + maps_cap + rec_cap * 8;
  int mfd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  int pfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  size_t len = 0;
  int64_t total = 0;
  if (mfd < 0 || pfd < 0 || read_all(mfd, maps, maps_cap - 1, &len) != 0) total = -EIO;
  maps[len] = 0;
  size_t nrec = 0;
  for (const char* p = maps; total >= 0 && *p;) {
    const char* eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    uintptr_t lo = parse_hex(&p);
    ++p;
    uintptr_t hi = parse_hex(&p);
    ++p;
    const int readable = p[0] == 'r', writable = p[1] == 'w';
    const char* name = memchr(p, '/', (size_t)(eol - p)) ? "file" : memchr(p, '[', (size_t)(eol - p));
    /* [vdso], [vvar] and the like are the kernel's; [heap] and [stack] are ordinary anonymous memory. */
    int special = name && name[0] == '[' && strncmp(name, "[heap]", 6) != 0 && strncmp(name, "[stack]", 7) != 0;
    p = *eol ? eol + 1 : eol;
    if (!readable || special) continue;
    for (uintptr_t a = lo; a < hi && total >= 0;) {
      uint64_t ent[512];
      size_t n = (hi - a) / kPage;
      if (n > 512) n = 512;
      ssize_t got = pread(pfd, ent, n * 8, (off_t)(a / kPage * 8));
      if (got <= 0) break;
      n = (size_t)got / 8;
      for (size_t i = 0; i < n; ++i, a += kPage) {
        const uint64_t e = ent[i];
        if (!(e >> 63 & 1)) continue;                 /* not present */
        if (a >= own_lo && a < own_hi) continue;      /* this report's own buffers */
        uint64_t r;
        if (writable && !(e >> 61 & 1) && (e >> 56 & 1)) r = a | kRecWrite;  /* anonymous, exclusive */
        else if (e >> 61 & 1) r = a | kRecRead;       /* a file page (or shared memory) */
        else continue;                                /* still shared with the zygote, only read */
        rec[nrec++] = r;
        ++total;
        if (nrec == rec_cap) {
          write_all(fd, (const char*)rec, nrec * 8);
          nrec = 0;
        }
      }
    }
  }
  if (nrec) write_all(fd, (const char*)rec, nrec * 8);
  if (mfd >= 0) close(mfd);
  if (pfd >= 0) close(pfd);
  munmap(maps, maps_cap + rec_cap * 8);
  return total;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* Learns the prefault set (see above). program: the probe program (Python source); probes: how many
   probe children run it; kinds: kRecWrite and/or kRecRead, which pages to learn; out: K2_OUT_SIZE slots.
   Returns 0 in the zygote (the set is in place; k2_learned_stats describes it), -errno on an error (the
   set stays empty: runs fault as before), and K2_CHILD_PROBE in a probe child, which must then run the
   program from fd 3 as a dropped run does and call k2_probe_report(out[K2_OUT_PROBE_FD]). */
K2_EXPORT int k2_zygote_learn(const char* program, int probes, int kinds, int64_t* out) {
  void (*after_fork_child)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "PyOS_AfterFork_Child");
  if (!after_fork_child) return -ENOSYS;
  const size_t cap = 1 << 18; /* records over all probes */
  uint64_t* all = mmap(NULL, cap * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (all == MAP_FAILED) return -errno;
  size_t n = 0;
  int err = 0;
  for (int probe = 0; probe < probes && !err; ++probe) {
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) != 0) {
      err = -errno;
      break;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(pp[0]);
      int m = memfd_create("probe.py", 0);
      if (m < 0) _exit(127);
      write_all(m, "\n", 1);
      write_all(m, program, strlen(program));
      if (m != 3 && (dup2(m, 3) < 0 || close(m) != 0)) _exit(127);
      after_fork_child();
      memset(out, 0, sizeof(int64_t) * K2_OUT_SIZE);
      out[K2_OUT_PROBE_FD] = pp[1];
      return K2_CHILD_PROBE;
    }
    close(pp[1]);
    if (pid < 0) {
      err = -errno;
      close(pp[0]);
      break;
    }
    size_t got = 0;
    int r = read_all(pp[0], (char*)(all + n), (cap - n) * 8, &got);
    close(pp[0]);
    n += got / 8;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (r != 0) err = r;
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) err = -ECHILD;
  }
  g_nranges = 0;
  memset(g_learned, 0, sizeof g_learned);
  if (!err) {
    qsort(all, n, 8, cmp_u64);
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j < n && all[j] == all[i]) ++j;
      const uint64_t r = all[i];
      const int seen = (int)(j - i), kind = (int)(r & (kPage - 1));
      i = j;
      if (2 * seen <= probes || !(kind & kinds)) continue; /* a majority of the probes touched it */
      const uintptr_t page = (uintptr_t)(r & ~(uint64_t)(kPage - 1));
      const uint32_t write = kind == kRecWrite;
      struct k2_range* last = g_nranges ? &g_ranges[g_nranges - 1] : NULL;
      if (last && last->write == write && last->start + (uintptr_t)last->pages * kPage == page) {
        ++last->pages;
      } else if (g_nranges < kMaxRanges) {
        g_ranges[g_nranges++] = (struct k2_range){page, 1, write};
      } else {
        continue;
      }
      ++g_learned[write ? 1 : 2];
    }
    g_learned[0] = g_nranges;
    pin_written();
    inherit_file_pages();
  }
  munmap(all, cap * 8);
  return err;
}

/* The learned set: ranges, pages populated for writing, pages populated for reading, how many of the
   written pages are pinned (copied by the fork instead) and how many file pages the fork maps. */
K2_EXPORT void k2_learned_stats(int64_t* out5) {
  for (int i = 0; i < 5; ++i) out5[i] = g_learned[i];
}

/* ---- Network namespace pool ----------------------------------------------------------------------------
   Why: creating a network namespace and tearing it down (the kernel's cleanup_net, in a worker thread)
   costs ~2 ms of CPU per run on the development VM, a sixth of a print(1) run. So each zygote keeps the
   namespaces its runs used and gives one to the next run once the previous run is entirely gone (its PID 1
   reaped: the kernel has then killed and reaped every process of the run's PID namespace, so no process
   and no open socket of it is left). A run never shares a namespace with a concurrent run. What a finished
   run could leave behind in it is checked by the next run before it uses it (netns_clean): without any
   capability a program can only create sockets (and fragment queues), not change interfaces, addresses,
   routes, netfilter or net sysctls; so a namespace whose socket count, TIME_WAIT, orphan and fragment
   counts are all zero is indistinguishable, to a program, from a fresh one with loopback up. If anything
   is left (a TIME_WAIT connection, a socket still being freed), that run unshares a fresh namespace
   instead, as every run did before. Pooled namespaces die with the zygote. */
enum { kMaxNetns = 64 };
static struct {
  int fd;     /* O_CLOEXEC fd of the namespace */
  pid_t user; /* PID 1 of the run using it; 0: free */
} g_netns[kMaxNetns];
static int g_nnetns;
static int g_own_netns = -1;

static int loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  int r = ioctl(s, SIOCSIFFLAGS, &ifr);
  close(s);
  return r;
}

/* In the zygote: the index of a free pooled namespace, creating one while the pool is below its cap; -1
   when none can be had (the run then unshares its own); -2 when the zygote could not return to its own
   network namespace (it must exit). */
static int netns_pick(void) {
  for (int i = 0; i < g_nnetns; ++i) {
    if (!g_netns[i].user) return i;
  }
  if (g_nnetns == kMaxNetns) return -1;
  if (g_own_netns < 0 && (g_own_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) return -1;
  if (unshare(CLONE_NEWNET) != 0) return -1;
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int ok = fd >= 0 && loopback_up() == 0;
  if (setns(g_own_netns, CLONE_NEWNET) != 0) return -2;
  if (!ok) {
    if (fd >= 0) close(fd);
    return -1;
  }
  g_netns[g_nnetns].fd = fd;
  g_netns[g_nnetns].user = 0;
  return g_nnetns++;
}

static long stat_field(const char* buf, const char* key) {
  const char* p = strstr(buf, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int read_small(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  int r = read_all(fd, buf, cap - 1, &len);
  close(fd);
  buf[len] = 0;
  return r == 0 ? 0 : -1;
}

/* In a run's child, inside a pooled namespace: 1 when no socket, TIME_WAIT entry, orphan or fragment
   queue is left in it (see above), else 0. */
static int netns_clean(void) {
  char buf[1024];
  if (read_small("/proc/self/net/sockstat", buf, sizeof buf) != 0) return 0;
  if (stat_field(buf, "sockets: used ") != 0 || stat_field(buf, " tw ") != 0 || stat_field(buf, " orphan ") != 0 ||
      stat_field(buf, "FRAG: inuse ") != 0) {
    return 0;
  }
  /* Without IPv6 there is no sockstat6 and nothing to check there. */
  if (read_small("/proc/self/net/sockstat6", buf, sizeof buf) == 0 && stat_field(buf, "FRAG6: inuse ") > 0) return 0;
  return 1;
}

/* Reaps every exited child and reports a run's PID 1 status as {"wait": N} on its status pipe. */
static void reap(void) {
  for (;;) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < g_nruns; ++i) {
      if (g_runs[i].pid != pid) continue;
      char line[48];
      int n = snprintf(line, sizeof line, "{\"wait\": %d}\n", st);
      write_all(g_runs[i].status_fd, line, (size_t)n);
      close(g_runs[i].status_fd);
      g_runs[i] = g_runs[--g_nruns];
      break;
    }
    for (int i = 0; i < g_nnetns; ++i) {
      if (g_netns[i].user == pid) g_netns[i].user = 0;
    }
  }
}

/* In a run's child: reports a failed setup step to the host and exits. */
static void die(int status_fd, const char* what) {
  int e = errno;
  char line[256];
  int n = snprintf(line, sizeof line, "{\"setup_error\": \"%s: %s (errno %d)\"}\n", what, strerror(e), e);
  write_all(status_fd, line, (size_t)n);
  _exit(127);
}

/* In a run's child, still privileged in the zygote's user namespace: joins the run's cgroups (first,
   so everything after is accounted), then fresh mount/IPC/UTS/cgroup (and network) namespaces, a new
   session, fresh size-capped tmpfs on /work (owned by the program's uid), /tmp, /dev/shm and /mnt, a proc
   for the new PID namespace, the hostname, and loopback up. */
static void setup_run(const struct k2_run_params* p, const int* fds, int nfds, int uid, int gid, int netns_fd) {
  const int status_fd = fds[4];
  for (int i = 5; i < nfds; ++i) {
    if (write(fds[i], "0", 1) != 1) die(status_fd, "join the run's cgroup");
    close(fds[i]);
  }
  /* Right after joining, so that the run's cgroup is charged for the copies. */
  prefault();
  /* A pooled network namespace when one was free and nothing of its last run is left, else a fresh one. */
  int fresh_net = p->netns != 0;
  if (fresh_net && netns_fd >= 0) {
    if (setns(netns_fd, CLONE_NEWNET) != 0) die(status_fd, "setns to a pooled network namespace");
    fresh_net = !netns_clean();
  }
  for (int i = 0; i < g_nnetns; ++i) close(g_netns[i].fd);
  if (g_own_netns >= 0) close(g_own_netns);
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
  if (fresh_net) flags |= CLONE_NEWNET;
  if (unshare(flags) != 0) die(status_fd, "unshare");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die(status_fd, "pdeathsig");
  if (setsid() < 0) die(status_fd, "setsid");
  char opts[160];
  snprintf(opts, sizeof opts, "size=%lldk,nr_inodes=%lld,mode=0755,uid=%d,gid=%d", (long long)p->tmpfs_kb,
           (long long)p->inodes, uid, gid);
  if (mount("tmpfs", "/work", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /work");
  snprintf(opts, sizeof opts, "size=%lldk,nr_inodes=%lld,mode=1777", (long long)p->tmpfs_kb, (long long)p->inodes);
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /tmp");
  if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /dev/shm");
  /* /mnt too: SandboxFusion's programs and clients use absolute paths there (its test_python_fetch_files). */
  if (mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /mnt");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die(status_fd, "mount /proc");
  if (sethostname("sandbox", 7) != 0) die(status_fd, "sethostname");
  if (fresh_net && loopback_up() != 0) die(status_fd, "loopback up");
}

static char* const kEnv[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "LANG=C.UTF-8", "TMPDIR=/tmp",
                              "PYTHONDONTWRITEBYTECODE=1", "USER=sandbox", NULL};

/* The fast path (no files to write, none to fetch), still in C: rlimits, the program's uid/gid (which
   clears the permitted and effective capabilities; the bounding set is already empty), no_new_privs,
   stdio, /work as cwd, the seccomp filter, and only the request memfd left open (on fd 3). Bash is
   executed from here; for Python the caller returns to the interpreter. Same steps, same order as
   run_program in zygote_py.cc. */
static void drop(const struct k2_run_params* p, const int* fds, int uid, int gid, const struct sock_fprog* fprog) {
  const int req_fd = fds[0], status_fd = fds[4];
  struct rlimit rl = {(rlim_t)p->cpu_s, (rlim_t)p->cpu_s + 1};
  if (setrlimit(RLIMIT_CPU, &rl) != 0) die(status_fd, "RLIMIT_CPU");
  rl.rlim_cur = rl.rlim_max = (rlim_t)p->nofile;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die(status_fd, "RLIMIT_NOFILE");
  rl.rlim_cur = rl.rlim_max = 0;
  if (setrlimit(RLIMIT_CORE, &rl) != 0) die(status_fd, "RLIMIT_CORE");
  rl.rlim_cur = rl.rlim_max = (rlim_t)p->fsize;
  if (setrlimit(RLIMIT_FSIZE, &rl) != 0) die(status_fd, "RLIMIT_FSIZE");
  /* Raw syscalls: the zygote is single-threaded, and glibc's set*id would broadcast to threads. */
  if (syscall(SYS_setresgid, gid, gid, gid) != 0) die(status_fd, "setresgid");
  if (syscall(SYS_setresuid, uid, uid, uid) != 0) die(status_fd, "setresuid");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(status_fd, "no_new_privs");
  if (dup2(fds[1], 0) < 0 || dup2(fds[2], 1) < 0 || dup2(fds[3], 2) < 0) die(status_fd, "dup2 stdio");
  if (chdir("/work") != 0) die(status_fd, "chdir /work");
  int code_fd = req_fd;
  if (p->lang == 1) {
    /* bash reads its script from /dev/fd/3, which reopens the file at offset 0: copy the program
       (after the request's empty metadata line) into a memfd of its own. */
    code_fd = memfd_create("main.sh", 0);
    if (code_fd < 0) die(status_fd, "memfd for the script");
    char buf[16384];
    off_t off = 1;
    for (;;) {
      ssize_t n = pread(req_fd, buf, sizeof buf, off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die(status_fd, "read the request");
      if (n == 0) break;
      write_all(code_fd, buf, (size_t)n);
      off += n;
    }
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0) != 0) die(status_fd, "seccomp");
  if (code_fd != 3 && dup2(code_fd, 3) < 0) die(status_fd, "dup2 code");
  if (fcntl(3, F_SETFD, 0) != 0) die(status_fd, "fcntl code fd");
  syscall(SYS_close_range, 4U, ~0U, 0U);  /* the status pipe too: the program must not write it */
  if (p->lang == 1) {
    signal(SIGPIPE, SIG_DFL); /* Python ignores SIGPIPE; bash expects the default */
    char* const argv[] = {"bash", "/dev/fd/3", NULL};
    execve("/bin/bash", argv, kEnv);
    _exit(127);
  }
}

/* The zygote's loop. ctl: the control socket; pidns_fd: the zygote's own PID namespace; uid/gid: the
   program's ids; out: K2_OUT_SIZE int64 slots.

   Returns 0 when the host closed the socket (the zygote should exit, which as PID 1 of its namespace
   kills every run), -errno on an unrecoverable error, and, in a run's child only,
   K2_CHILD_PRIVILEGED (fds in out) or K2_CHILD_DROPPED (see drop), after setup_run and
   PyOS_AfterFork_Child, with the params in out. */
K2_EXPORT int k2_zygote_serve(int ctl, int pidns_fd, int uid, int gid, const struct sock_fprog* fprog,
                              int64_t* out) {
  void (*after_fork_child)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "PyOS_AfterFork_Child");
  if (!after_fork_child) return -ENOSYS;
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, &old) != 0) return -errno;
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return -errno;
  for (;;) {
    struct pollfd pf[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    int r = poll(pf, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (pf[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      while (read(sfd, si, sizeof si) > 0) {
      }
      reap();
    }
    if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    struct k2_run_params params;
    union {
      char buf[CMSG_SPACE(sizeof(int) * K2_OUT_MAX_FDS)];
      struct cmsghdr align;
    } cbuf;
    struct iovec iov = {&params, sizeof params};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof cbuf.buf;
    ssize_t n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? 0 : -errno;
    int fds[K2_OUT_MAX_FDS];
    int nfds = 0;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < k && nfds < K2_OUT_MAX_FDS; ++i) memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
    }
    const int ok = n == (ssize_t)sizeof params && params.magic == K2_RUN_MAGIC && nfds >= 5 &&
                   !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && g_nruns < kMaxRuns;
    pid_t pid = -1;
    const int ni = ok && params.netns == 2 ? netns_pick() : -1;
    if (ni == -2) return -EIO;
    /* unshare(CLONE_NEWPID) makes the next child PID 1 of a namespace of its own; the kernel only allows
       it while the children's namespace is our own, so setns() resets that first. A malformed message
       or a failed fork gets no answer: the host sees its pipes close without a status. */
    if (ok && setns(pidns_fd, CLONE_NEWPID) == 0 && unshare(CLONE_NEWPID) == 0) pid = fork();
    if (pid == 0) {
      if (g_pin_ring >= 0) close(g_pin_ring);
      close(ctl);
      close(sfd);
      close(pidns_fd);
      for (int i = 0; i < g_nruns; ++i) close(g_runs[i].status_fd);
      sigprocmask(SIG_SETMASK, &old, NULL);
      setup_run(&params, fds, nfds, uid, gid, ni >= 0 ? g_netns[ni].fd : -1);
      const int fast = !params.fetch && !params.files;
      if (fast) drop(&params, fds, uid, gid, fprog);
      after_fork_child();
      memset(out, 0, sizeof(int64_t) * K2_OUT_SIZE);
      memcpy(out + K2_OUT_PARAMS, &params, sizeof params);
      if (fast) return K2_CHILD_DROPPED;
      out[K2_OUT_NFDS] = 5;
      for (int i = 0; i < 5; ++i) out[K2_OUT_FDS + i] = fds[i];
      return K2_CHILD_PRIVILEGED;
    }
    for (int i = 0; i < nfds; ++i) {
      if (pid > 0 && i == 4) continue;
      close(fds[i]);
    }
    if (pid > 0) {
      if (ni >= 0) g_netns[ni].user = pid;
      g_runs[g_nruns].pid = pid;
      g_runs[g_nruns].status_fd = fds[4];
      ++g_nruns;
    }
  }
}
