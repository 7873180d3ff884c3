#!/bin/sh
# kiosk-fleet: the hub's command line (serve, import, backup, release, ...; `kiosk-fleet --help`).
# --no-allocation-site-pretenuring: see hub/README.md, "Deploying: the host's limits" (memory per terminal).
# `import` and `backup` work on the service's database: KF_DATA_DIR as the service has it (its settings file, read
# for that one line only: the file is systemd's format, not the shell's), unless set in the environment.
if [ -z "${KF_DATA_DIR:-}" ] && [ -r /etc/kiosk-fleet/hub.env ]; then
  KF_DATA_DIR=$(sed -n 's/^[[:space:]]*KF_DATA_DIR=//p' /etc/kiosk-fleet/hub.env | tail -n 1)
fi
KF_DATA_DIR=${KF_DATA_DIR:-/var/lib/kiosk-fleet}
export KF_DATA_DIR
exec /usr/bin/node --no-allocation-site-pretenuring /usr/lib/kiosk-fleet-hub/hub/dist/kiosk-fleet.mjs "$@"
