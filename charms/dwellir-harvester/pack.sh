#!/bin/sh
# Pack the dwellir-harvester charm: ./pack.sh [charmcraft pack arguments...]
# The shared tools/pack-charm.sh builds this repository's wheels into wheels/ (what
# requirements.txt installs), then runs `charmcraft pack` here; it needs Ubuntu 24.04.
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../tools/pack-charm.sh" "$here" "$@"
