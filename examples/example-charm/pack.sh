#!/bin/sh
# Pack the harvester-example charm: ./pack.sh [charmcraft pack arguments...]
#
# Needs charmcraft (`sudo snap install charmcraft --classic`) and LXD (`sudo snap install lxd &&
# sudo lxd init --auto`) or Multipass. With DWELLIR_HARVESTER_WHEELS set to a directory of wheels
# (built from a checkout of dwellir-harvester: see requirements.txt), they are copied into wheels/,
# where requirements.txt's `--find-links ./wheels` installs them from; without it, wheels/ is left
# as it is and pip takes the released packages from the index.
set -eu
cd "$(dirname "$0")"

command -v charmcraft >/dev/null 2>&1 || {
    echo "pack.sh: charmcraft is not installed: sudo snap install charmcraft --classic" >&2
    exit 2
}

if [ -n "${DWELLIR_HARVESTER_WHEELS:-}" ]; then
    for needed in dwellir_harvester_lib dwellir_harvester dwellir_harvester_charm; do
        if ! ls "$DWELLIR_HARVESTER_WHEELS/$needed"-*.whl >/dev/null 2>&1; then
            echo "pack.sh: DWELLIR_HARVESTER_WHEELS=$DWELLIR_HARVESTER_WHEELS holds no $needed-*.whl; build the wheels as requirements.txt shows" >&2
            exit 2
        fi
    done
    rm -rf wheels
    mkdir wheels
    cp "$DWELLIR_HARVESTER_WHEELS"/*.whl wheels/
fi

# The harvester refuses collectors that other users may change: nothing in the packed charm may be
# group- or world-writable.
chmod -R go-w src collectors

exec charmcraft pack "$@"
