#!/usr/bin/env bash
# The vitest suite (SQLite) on another Node, in a copy of this tree whose native module (better-sqlite3) is rebuilt
# for that Node's ABI, so the tree itself keeps its Node 20 build. .ci/run calls it once per extra Node (22, 24).
#   .ci/other-node.sh NODE_HOME COPY_DIR     NODE_HOME holds bin/node and include/node (the npm `node` package's)
set -euo pipefail
cd "$(dirname "$0")/.."
node_home=$1
copy=$2

rm -rf "$copy"
mkdir -p "$copy"
cp -a . "$copy/"
cd "$copy"
export PATH="$node_home/bin:$PATH"
echo "vitest on node $(node --version)"
npm rebuild better-sqlite3 --nodedir="$node_home" >/dev/null
env -u TEST_DATABASE_URL OPENRUSH_CONSUMER_NODES= npx vitest run
