# Shared by scripts/run and scripts/test: say what is happening, install what is missing.
# shellcheck shell=bash

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\n\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = "0" ]; }

ensure_cargo() {
  command -v cargo >/dev/null 2>&1 || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
}

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_components() {
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      step "installing the Rust component $c"
      rustup component add "$c"
    fi
  done
}

# apt_install PACKAGE... : installs Debian packages that are missing, when running as root.
apt_updated=""
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root; then
    note "missing Debian packages: ${missing[*]} (not root, so not installing them)"
    return 1
  fi
  step "installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A working wasm-opt for release builds: Debian's binaryen 108 breaks the module, npm's 132 works.
ensure_wasm_opt() {
  if [ -x target/tools/node_modules/.bin/wasm-opt ]; then return 0; fi
  if command -v npm >/dev/null 2>&1; then
    step "installing wasm-opt (npm binaryen@132) into target/tools"
    mkdir -p target/tools
    npm install --prefix target/tools --no-audit --no-fund --loglevel=error binaryen@132 >/dev/null \
      || note "could not install binaryen; the client will be served unoptimised"
  else
    note "npm not found: the client will be served without wasm-opt"
  fi
}
