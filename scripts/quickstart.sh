#!/usr/bin/env bash
# The main job on the embedded default. Today the most end-to-end thing k2gym has is the foundation:
# the binary, its config resolution and the SQLite store. Later stages join here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/default/apps/k2gym
DB=${K2GYM_DB:-k2gym.db}
echo "== k2gym quickstart (embedded default: CPU, one SQLite file: $DB)"
$BIN version
$BIN db info --db "$DB"
