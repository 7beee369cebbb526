#!/bin/bash
# Example stop script with a virtual IP (application.stop): stop the application first, so its
# file system closes with the peer in sync, then give the address up.
set -uo pipefail
VIP=${VIP:-192.168.1.100/24}
DEV=${DEV:-eth0}
/opt/app/bin/stop
ip addr del "$VIP" dev "$DEV" 2>/dev/null || true
exit 0
