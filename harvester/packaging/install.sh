#!/bin/sh
# Install the dwellir-harvester daemon as a hardened systemd service (run as root).
#
#   sudo sh harvester/packaging/install.sh [PIP-INSTALL-ARGS...]
#
# Without arguments it installs the runner from this checkout; pass e.g. `dwellir-harvester==0.1.0`
# to install a released version instead. It creates a venv in /opt/dwellir-harvester/venv, a system
# user `dwellir-harvester`, /etc/dwellir-harvester/config.d, the unit in /etc/systemd/system, and
# starts the service. Re-running it upgrades in place. Check a config before reloading with
#   /opt/dwellir-harvester/venv/bin/dwellir-harvester serve --check-config
set -eu

prefix=/opt/dwellir-harvester
user=dwellir-harvester
here=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root" >&2
    exit 2
fi
if [ "$#" -eq 0 ]; then
    set -- "$here/harvester-lib" "$here/harvester"
fi

python3 -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --quiet --upgrade "$@"

if ! id "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
install -d -m 0755 /etc/dwellir-harvester /etc/dwellir-harvester/config.d
[ -e /etc/dwellir-harvester/config.yaml ] || printf '# See docs/operators.md\ncollectors: [host]\n' \
    > /etc/dwellir-harvester/config.yaml

"$prefix/venv/bin/python" -c \
    "from dwellir_harvester.daemon import systemd_unit; print(systemd_unit('$prefix/venv/bin/dwellir-harvester', '$user'), end='')" \
    > /etc/systemd/system/dwellir-harvester.service
systemctl daemon-reload
systemctl enable --now dwellir-harvester.service
systemctl --no-pager status dwellir-harvester.service || true
