// Where a test binary finds the source tree (fixtures, docs) and its build tree (the k2gym binary).
// The paths are symbols of a file generated per build directory, not macros holding the paths, so a test's
// object code does not depend on where the checkout lives and compiler caches share it between checkouts.
#pragma once

extern "C" const char k2gym_test_source_dir[];
extern "C" const char k2gym_test_binary_dir[];

#define K2GYM_SOURCE_DIR k2gym_test_source_dir
#define K2GYM_BINARY_DIR k2gym_test_binary_dir
