// Deterministic mode (`k2gym --deterministic`, or K2GYM_DETERMINISTIC=1 in the environment): the same
// seed gives the same results whatever the timing, the batch composition of generation or the machine's
// core count (on one CPU architecture and build). docs/guide.md lists what it fixes and what it costs.
#pragma once

namespace k2 {

// OpenMP and OpenBLAS threads in deterministic mode, on every machine: floating-point reductions split
// over threads give bits that depend on the thread count.
constexpr int kDeterministicThreads = 2;

// True when K2GYM_DETERMINISTIC=1 (read once).
bool DeterministicMode();

// Before anything starts threads (first thing in main): when argv holds --deterministic or the
// environment K2GYM_DETERMINISTIC=1, sets K2GYM_DETERMINISTIC=1, OMP_NUM_THREADS and
// OPENBLAS_NUM_THREADS to kDeterministicThreads (child processes inherit them) and returns true when the
// process must re-exec for libgomp and OpenBLAS to read them (they do so once, when loaded).
bool PrepareDeterministicEnvironment(int argc, char** argv);

}  // namespace k2
