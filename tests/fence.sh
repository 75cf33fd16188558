#!/usr/bin/env bash
# The sans-IO fence, tested: plants file, socket and tokio calls in the protocol core
# of a copy of the tree and checks that
# `cargo clippy -p quorate --no-default-features -- -D warnings` refuses every one
# (clippy.toml's disallowed methods and types; tokio is not a dependency of the core).
# The copy shares this tree's build cache: only the core is checked again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

tar -C "$root" --exclude=./target --exclude='./target-*' --exclude=./.git \
  --exclude=./fuzz/corpus -cf - . | tar -C "$tmp" -xf -

plant() { # file, calls: appended to the file in a function of their own
  printf '\n#[allow(dead_code)]\nfn fence_plant() {\n    %s\n}\n' "$2" >>"$tmp/$1"
}
clippy() { # output file; fails the fence if clippy passes
  if (cd "$tmp" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" cargo clippy --locked -q -p quorate \
    --no-default-features -- -D warnings) >"$1" 2>&1; then
    echo "fence: clippy accepted I/O planted in the core" >&2
    exit 1
  fi
}
expect() { # output file, planted file, message: refused for what it is, at its place
  if ! grep -A2 -F "$3" "$1" | grep -qF -- "--> $2:"; then
    echo "fence: no \"$3\" in $2" >&2
    cat "$1" >&2
    exit 1
  fi
}

# Calls clippy.toml disallows, in four layers of the core.
plant src/swim/mod.rs 'let _ = std::fs::read("x"); let _ = std::net::UdpSocket::bind("0.0.0.0:0");'
plant src/election/lease.rs 'let _ = std::fs::File::open("x"); let _ = std::net::TcpStream::connect("127.0.0.1:1");'
plant src/wire/mod.rs 'let _ = std::fs::write("x", b"");'
plant src/engine/route.rs 'let _ = std::time::Instant::now();'
clippy "$tmp/lints.out"
expect "$tmp/lints.out" src/swim/mod.rs 'disallowed method `std::fs::read`'
expect "$tmp/lints.out" src/swim/mod.rs 'disallowed method `std::net::UdpSocket::bind`'
expect "$tmp/lints.out" src/election/lease.rs 'disallowed method `std::fs::File::open`'
expect "$tmp/lints.out" src/election/lease.rs 'disallowed method `std::net::TcpStream::connect`'
expect "$tmp/lints.out" src/wire/mod.rs 'disallowed method `std::fs::write`'
expect "$tmp/lints.out" src/engine/route.rs 'disallowed method `std::time::Instant::now`'

# tokio: the core does not even resolve it (a compile error, so a run of its own).
plant src/groups/mod.rs 'let _ = tokio::spawn(async {});'
clippy "$tmp/tokio.out"
expect "$tmp/tokio.out" src/groups/mod.rs '`tokio`'
echo "fence: every plant refused"
