#!/bin/sh
# kiosk-fleet: the hub's command line (serve, import, backup, release, ...; `kiosk-fleet --help`).
# --no-allocation-site-pretenuring: see hub/README.md, "Deploying: the host's limits" (memory per terminal).
# As root, `import` and `backup` read the same settings the service does (KF_DATA_DIR from /etc/kiosk-fleet/hub.env).
if [ -r /etc/kiosk-fleet/hub.env ] && [ -z "${KF_DATA_DIR:-}" ]; then
  set -a
  . /etc/kiosk-fleet/hub.env
  set +a
fi
: "${KF_DATA_DIR:=/var/lib/kiosk-fleet}"
export KF_DATA_DIR
exec /usr/bin/node --no-allocation-site-pretenuring /usr/lib/kiosk-fleet-hub/hub/dist/kiosk-fleet.mjs "$@"
