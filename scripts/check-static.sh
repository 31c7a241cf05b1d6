#!/usr/bin/env bash
# Checks that need no Open vSwitch: formatting of shell and Ruby files.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in scripts/*.sh benches/*.sh vagrant/*.sh .ci/run; do
    [ -f "$f" ] && bash -n "$f"
done
if [ -f vagrant/Vagrantfile ] && command -v ruby >/dev/null 2>&1; then
    ruby -c vagrant/Vagrantfile >/dev/null
fi
echo "static checks: ok"
