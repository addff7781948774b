#!/bin/sh
# kiosk-provision on a blank Debian 12, straight from this source tree: a small venv with
# only what kiosk-provision itself needs; it then builds the terminal's own virtualenv
# under /opt/plus-kiosk. Usage: provisioning/bootstrap.sh --site SITE.toml [--check]
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "kiosk-provision must run as root (it creates users and system files)." >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
boot=/var/cache/plus-kiosk/provision-venv
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-venv
fi
[ -x "$boot/bin/python" ] || python3 -m venv "$boot"
"$boot/bin/pip" install -q --disable-pip-version-check --no-warn-conflicts --no-deps -e "$src"
"$boot/bin/pip" install -q --disable-pip-version-check --no-warn-conflicts "pydantic>=2.5" "ada-url>=1.15" "babel>=2.12"
exec "$boot/bin/kiosk-provision" "$@"
