#!/usr/bin/env bash
# Builds the Debian package with cargo-deb from an existing build of the
# binary (the release build by default; OVSNET_DEB_PROFILE=dev for a debug
# one): generates the manual pages and shell completions with the binary
# itself, then runs `cargo deb --no-build`. Installs cargo-deb when it is
# missing. Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

profile="${OVSNET_DEB_PROFILE:-release}"
case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir="$profile" ;;
esac
target_dir="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}"
out="$target_dir/$profile_dir"
bin="$out/ovsnet"
if [ ! -x "$bin" ]; then
    echo "== build ($profile)" >&2
    cargo build --profile "$profile" --locked --bin ovsnet
fi

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "== installing cargo-deb" >&2
    cargo install cargo-deb --locked --version 3.8.0
fi

echo "== manual pages and completions" >&2
assets="$out/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man" >&2
gzip -9n "$assets"/man/*.1
"$bin" completion bash >"$assets/completions/ovsnet"
"$bin" completion zsh >"$assets/completions/_ovsnet"
"$bin" completion fish >"$assets/completions/ovsnet.fish"

echo "== cargo deb" >&2
mkdir -p "$target_dir/debian"
# Stripped: the release profile keeps line tables for the benchmarks and
# profiling, the package does not need them.
cargo deb --no-build --locked --strip --profile "$profile" --output "$target_dir/debian/" >&2
deb=$(ls -t "$target_dir"/debian/ovsnet_*.deb | head -n 1)
echo "$deb"
