#!/bin/sh
# Installs what oneos needs and builds it; quick when nothing is missing. Used by ./oneos and npm test.
#   - Debian packages: nats-server, openssl (the test cluster's CA and TLS certificates), fuse3, libfuse2 (FUSE for CloudFS), a C toolchain for the native
#     addons (node-pty, our pipe2 addon), tmux (interactive-shell tests), git and sqlite3 (CloudFS tests), redis-server (netstack tests).
#   - npm packages (npm ci), the native addon, the TypeScript build.
set -eu
cd "$(dirname "$0")/.."
say() { printf 'oneos setup: %s\n' "$*" >&2; }

# (`node --version` answers in a few ms; `node -p` would start all of Node: ./oneos runs this at every call)
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p')
node_major=${node_major:-0}
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# Debian packages, by the command or file each provides.
missing=""
need() { # need PACKAGE TEST...
  pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then missing="$missing $pkg"; fi
}
need nats-server command -v nats-server
need openssl command -v openssl
need fuse3 command -v fusermount3
need libfuse2 sh -c 'ldconfig -p | grep -q "libfuse.so.2"'
need make command -v make
need g++ command -v g++
need python3 command -v python3
need curl command -v curl
need iproute2 command -v ip
need tmux command -v tmux
need git command -v git
need sqlite3 command -v sqlite3
# The netstack's own scenario: redis-benchmark on one node against redis-server on another.
need redis-server command -v redis-server
need procps command -v ps
need chromium command -v chromium
# The benchmarks' references: ssh pipes and sshfs on loopback, next to oneos in the same run.
need openssh-server test -x /usr/sbin/sshd
need openssh-client command -v ssh
need sshfs command -v sshfs
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages:$missing"
    say "run as root:  apt-get update && apt-get install -y$missing"
    exit 1
  fi
  say "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >&2
fi

# npm packages: again whenever package-lock.json changed since the last install.
if [ ! -f node_modules/.oneos-installed ] || [ package-lock.json -nt node_modules/.oneos-installed ]; then
  say "installing npm packages"
  # npm ci rejects lock files written by this npm (it omits other platforms' optional packages): install honours the lock.
  npm install --no-audit --no-fund --loglevel=error >&2
  touch node_modules/.oneos-installed
fi

# CloudFS's fuse-native with the caller's uid/gid (files created through a mount belong to their
# creator) and kernel cache invalidation; without it CloudFS falls back to the stock module, where
# they belong to root and the kernel caches no attributes.
fuse_node=vfs-fuse/native/out/build/Release/fuse.node
if [ ! -f $fuse_node ] || [ vfs-fuse/native/build.mjs -nt $fuse_node ] || [ vfs-fuse/native/kernel-channel.c -nt $fuse_node ]; then
  say "building CloudFS's fuse-native"
  node vfs-fuse/native/build.mjs >/dev/null
fi

# Native addon and TypeScript: rebuilt when any source is newer than the last build.
addon=runtime/native/build/Release/oneos_pipe.node
if [ ! -f $addon ] || [ -n "$(find runtime/native -maxdepth 1 -newer $addon \( -name '*.c' -o -name '*.h' -o -name '*.gyp' \) 2>/dev/null | head -1)" ]; then
  say "building the native addon"
  npm run --silent build:native >/dev/null
fi
stamp=dist/.oneos-built
if [ ! -f "$stamp" ] || [ ! -f dist/cli/oneos-bundle.cjs ] || [ -n "$(find pseudokernel runtime vfs-fuse scheduler shell web-desktop cluster cli bench tsconfig.json package.json scripts/bundle-cli.mjs -newer "$stamp" \( -name '*.ts' -o -name '*.cts' -o -name '*.json' -o -name '*.vue' -o -name '*.mjs' \) 2>/dev/null | grep -v node_modules | head -1)" ]; then
  say "building"
  node node_modules/typescript/bin/tsc -p tsconfig.json
  node scripts/bundle-cli.mjs
  mkdir -p dist && touch "$stamp"
fi
if [ ! -f web-desktop/dist-client/index.html ] || [ -n "$(find web-desktop/client -newer web-desktop/dist-client/index.html -type f | head -1)" ]; then
  say "building the web desktop"
  npm run --silent build:desktop >&2
fi
