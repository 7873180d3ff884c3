#!/bin/sh
# kiosk-fleet-agent: the terminal agent's command line (`kiosk-fleet-agent --help`). The service runs the same
# program with the flags of its unit (/lib/systemd/system/kiosk-fleet-agent.service).
exec /usr/bin/node /usr/lib/kiosk-fleet-agent/bin/kiosk-fleet-agent.mjs "$@"
