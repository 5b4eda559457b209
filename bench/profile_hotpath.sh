#!/bin/bash
# Profile `keyport serve` (1 worker, SQLite, limits raised) under wrk with py-spy.
# usage: bench/profile_hotpath.sh NAME [KEYPORT_X=Y ...]   (from the repository root)
# Writes /tmp/hotpath_NAME.txt (py-spy raw, folded stacks); summarise it with
#   .venv/bin/python bench/profile_summary.py /tmp/hotpath_NAME.txt
set -e
W=$(mktemp -d)
export KEYPORT_DATABASE_URL="sqlite+aiosqlite:///$W/b.db" KEYPORT_RATE_LIMIT=1000000 KEYPORT_RATE_LIMIT_BURST=1000000 KEYPORT_AUTH_FAILURE_LIMIT=1000000
for e in "${@:2}"; do export "$e"; done
.venv/bin/keyport init --company B --owner-email o@b.example --json > /dev/null
KEY=$(.venv/bin/keyport key create --days 30 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid .venv/bin/keyport serve --host 127.0.0.1 --port $PORT --workers 1 > $W/server.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
PID=$(pgrep -P $SP -f "keyport" | head -1); [ -z "$PID" ] && PID=$SP
printf 'wrk.headers["Authorization"]="Bearer %s"\n' "$KEY" > $W/s.lua
wrk -t2 -c64 -d2s -s $W/s.lua http://127.0.0.1:$PORT/v4/user/me > /dev/null
.venv/bin/py-spy record -p $PID -d 8 -r 500 -f raw -o /tmp/hotpath_$1.txt > $W/pyspy.log 2>&1 &
PY=$!
wrk -t2 -c64 -d8s -s $W/s.lua http://127.0.0.1:$PORT/v4/user/me | grep Requests/sec
wait $PY || cat $W/pyspy.log
kill -TERM $SP; wait $SP 2>/dev/null || true
rm -rf $W
