#!/usr/bin/env bash
# Boost.Asio, Beast and Process are header-only in libboost-dev (1.74).
# Installs every Debian package (and npm MCP server) k2gym needs. Idempotent: quiet when all present.
# Usage: scripts/setup.sh            (as root on Debian 12)
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl ccache
  libboost-dev libboost-system-dev libboost-filesystem-dev libssl-dev
  libcurl4-openssl-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libvalijson-dev
  libpcre2-dev libopenblas-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libseccomp-dev libtomlplusplus-dev python3 python3-torch python3-numpy nodejs npm bubblewrap
  json-schema-test-suite python3-regex chromium wrk libgloo-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs from another repository may ship npm inside it; accept a working npm binary.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = npm ] || tmp+=("$p"); done; missing=("${tmp[@]}")
fi
if command -v node >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = nodejs ] || tmp+=("$p"); done; missing=("${tmp[@]}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reference MCP servers and the ecosystem's official clients (npm: the OpenAI Node SDK, the MCP
# TypeScript SDK, MCP Inspector's CLI), installed into third_party/mcp (ignored by git).
root=$(cd "$(dirname "$0")/.." && pwd)
mcp="$root/third_party/mcp"
NPM_PKGS=(
  @modelcontextprotocol/server-memory @modelcontextprotocol/server-filesystem
  @modelcontextprotocol/server-everything time-mcp mcp-server-sqlite
  openai@6 @modelcontextprotocol/sdk@1 @modelcontextprotocol/inspector@0.21
)
need_npm=0
for s in @modelcontextprotocol/server-memory @modelcontextprotocol/server-filesystem \
         @modelcontextprotocol/server-everything time-mcp mcp-server-sqlite openai @modelcontextprotocol/sdk \
         @modelcontextprotocol/inspector; do
  [ -f "$mcp/node_modules/$s/package.json" ] || need_npm=1
done
if [ $need_npm = 1 ] && command -v npm >/dev/null 2>&1; then
  echo "setup: installing MCP reference servers with npm"
  mkdir -p "$mcp"
  (cd "$mcp" && { [ -f package.json ] || echo '{"name":"k2gym-mcp-servers","private":true}' > package.json; } &&
   npm install --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}" >/dev/null) ||
   echo "setup: warning: npm install of MCP servers failed; MCP integration tests will skip" >&2
fi
exit 0
