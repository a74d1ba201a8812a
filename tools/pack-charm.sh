#!/bin/sh
# Pack one of this repository's charms: tools/pack-charm.sh CHARM_DIR [charmcraft pack arguments...]
# (each charm's ./pack.sh calls it with its own folder).
#
# Needs an Ubuntu 24.04 host with charmcraft (`sudo snap install charmcraft --classic`) and LXD
# (`sudo snap install lxd && lxd init --auto`) or Multipass, and python3 with pip.
#
# charmcraft only sees the charm's folder, and the charm's Python dependencies include this
# repository's own packages. So the script first builds wheels of harvester-lib, harvester and
# charm-helpers into the charm's wheels/ (git-ignored; its requirements.txt installs them from
# there), then runs `charmcraft pack` there, which builds the charm's venv in an Ubuntu 24.04
# instance.
set -eu

[ $# -ge 1 ] || { echo "usage: tools/pack-charm.sh CHARM_DIR [charmcraft pack arguments...]" >&2; exit 2; }
here=$(cd "$1" && pwd)
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

if [ -r /etc/os-release ]; then
    . /etc/os-release
    if [ "${ID:-}" != ubuntu ] || [ "${VERSION_ID:-}" != 24.04 ]; then
        echo "pack.sh: warning: packing is supported on Ubuntu 24.04 (this is ${PRETTY_NAME:-unknown})" >&2
    fi
fi
command -v charmcraft >/dev/null 2>&1 || {
    echo "pack.sh: charmcraft is not installed: sudo snap install charmcraft --classic" >&2
    exit 2
}

rm -rf "$here/wheels"
mkdir -p "$here/wheels"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$here/wheels" \
    "$repo/harvester-lib" "$repo/harvester" "$repo/charm-helpers"

# requirements.txt names the wheels by file name: it must name exactly the ones just built.
for wheel in $(sed -n 's|^\./wheels/||p' "$here/requirements.txt"); do
    if [ ! -f "$here/wheels/$wheel" ]; then
        echo "pack.sh: requirements.txt names wheels/$wheel, but the build made: $(ls "$here/wheels")" >&2
        echo "pack.sh: update the file names in requirements.txt to the packages' versions" >&2
        exit 1
    fi
done

# The packed charm keeps these modes: nothing in it may be writable by other users, and the
# harvester refuses plugin dirs and files that others may write to (docs/charm-authors.md,
# "Trust model").
chmod -R go-w "$here/src"
if [ -d "$here/collectors" ]; then chmod -R go-w "$here/collectors"; fi

cd "$here"
exec charmcraft pack "$@"
