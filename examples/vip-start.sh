#!/bin/bash
# Example start script with a virtual IP: the address moves with the primary role, so clients
# always reach the node that serves writes. Set it as application.start; the agent runs it on the
# node that becomes primary, with REPLICATOR_ROLE, REPLICATOR_ROOT and REPLICATOR_ADMIN set.
set -euo pipefail
VIP=${VIP:-192.168.1.100/24}
DEV=${DEV:-eth0}
ip addr add "$VIP" dev "$DEV" 2>/dev/null || true   # already there after a restart: fine
arping -c 3 -U -I "$DEV" "${VIP%/*}" >/dev/null 2>&1 || true   # tell the switch the address moved
# then start the application, which registers with the agent at $REPLICATOR_ADMIN
exec /opt/app/bin/start --data "$REPLICATOR_ROOT" --replicator-agent "$REPLICATOR_ADMIN"
