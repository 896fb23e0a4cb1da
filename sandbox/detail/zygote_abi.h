/* The message a host sends a zygote per run, shared by the host (C++) and the zygote's native helper
   (C, zygote_helper.c): fixed-size, native byte order, int64 fields only, so no parsing happens there.

   Sent as the data of one SOCK_SEQPACKET message whose SCM_RIGHTS fds are
   [request memfd, stdin, stdout, stderr, status pipe, cgroup.procs fds...]. */
#ifndef K2GYM_SANDBOX_DETAIL_ZYGOTE_ABI_H_
#define K2GYM_SANDBOX_DETAIL_ZYGOTE_ABI_H_

#include <stdint.h>

#define K2_RUN_MAGIC 0x6b32726e34ll /* "k2rn4": bumps with any layout change */

struct k2_run_params {
  int64_t magic;     /* K2_RUN_MAGIC */
  int64_t netns;     /* 1: a fresh network namespace (loopback only); 2: a pooled one when clean, else fresh */
  int64_t tmpfs_kb;  /* size of /work, /tmp and /dev/shm (each) */
  int64_t inodes;    /* inode cap of each of them */
  int64_t cpu_s;     /* RLIMIT_CPU soft limit (s); the hard limit is one more */
  int64_t nofile;    /* RLIMIT_NOFILE */
  int64_t fsize;     /* RLIMIT_FSIZE (bytes) */
  int64_t lang;      /* 0: python, 1: bash */
  int64_t fetch;     /* 1: PID 1 stays ours and reads fetch_files after the program */
  int64_t files;     /* 1: input files to write before the program (Python does it, privileged) */
};

/* Where the helper leaves a run for the Python side of the child (int64 slots). */
enum {
  K2_OUT_PARAMS = 0,
  K2_OUT_NFDS = 16,
  K2_OUT_FDS = 17,
  K2_OUT_MAX_FDS = 32,
  K2_OUT_PROBE_FD = 48,  /* K2_CHILD_PROBE: where k2_probe_report writes the probe's page set */
  K2_OUT_SIZE = 64
};

/* k2_zygote_serve's return value in a run's child. */
enum {
  K2_CHILD_PRIVILEGED = 5, /* namespaces set up; Python writes files / forks for fetch_files, then drops */
  K2_CHILD_DROPPED = 1,    /* fast path: privileges dropped, seccomp loaded, the request memfd on fd 3 */
  K2_CHILD_PROBE = 7       /* a learning probe (no namespaces, still privileged): run the probe program on
                              fd 3 as a dropped run would, then k2_probe_report(out[K2_OUT_PROBE_FD]) */
};

#endif /* K2GYM_SANDBOX_DETAIL_ZYGOTE_ABI_H_ */
