#!/usr/bin/env bash
# supervisord.sh - a throwaway supervisord (Debian 12 package "supervisor", 4.2) for tests,
# reachable only through its unix socket; the programs it runs listen on loopback only.
#
#   supervisord.sh install   install the package (policy-rc.d keeps the packaged service down)
#   supervisord.sh start     write a configuration under SUP_DIR, start supervisord in the
#                            foreground (setsid), wait until its socket answers, print settings
#   supervisord.sh stop      stop supervisord by the PID this script recorded, remove SUP_DIR
#
# Programs are added at run time: write SUP_DIR/programs/NAME.conf, then call the XML-RPC methods
# supervisor.reloadConfig and supervisor.addProcessGroup (what 'supervisorctl update' does).
#
# Environment:
#   SUP_DIR        working folder (default ${TMPDIR:-/tmp}/cfyauth-test-supervisord)
#   SUP_SOCKET     the socket's path (default SUP_DIR/supervisor.sock), such as one inside a
#                  manager root; at most 107 bytes
#   SUP_USER       with SUP_PASSWORD, the [unix_http_server] username and password, sent by
#   SUP_PASSWORD   clients as HTTP basic auth; both unset means no authentication
#   SUP_WATCH_PID  when set, a watcher stops supervisord as soon as that process exits, so a test
#                  binary that dies without cleaning up leaves nothing running
#   SUP_KEEP=1     keep SUP_DIR after stop (to read the logs)
#
# Exit status: 0 done, 2 usage, 3 supervisord is missing or did not start.
set -euo pipefail
DIR=${SUP_DIR:-${TMPDIR:-/tmp}/cfyauth-test-supervisord}
SOCK=${SUP_SOCKET:-$DIR/supervisor.sock}
log() { echo "[supervisord.sh] $*" >&2; }

cmd_install() {
  command -v supervisord >/dev/null && { log "supervisor already installed"; return; }
  if [ "$(id -u)" != 0 ]; then
    log "supervisord is missing; run as root or install it with apt-get install supervisor"
    exit 3
  fi
  local tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    tmp_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends supervisor >/dev/null
  [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

write_config() {
  local auth=""
  if [ -n "${SUP_USER:-}" ]; then
    auth="username=$SUP_USER
password=${SUP_PASSWORD:-}"
  fi
  cat >"$DIR/supervisord.conf" <<CONF
[unix_http_server]
file=$SOCK
chmod=0700
$auth

[supervisord]
logfile=$DIR/logs/supervisord.log
pidfile=$DIR/supervisord.pid
childlogdir=$DIR/logs
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$SOCK
$auth

[include]
files=$DIR/programs/*.conf
CONF
  chmod 600 "$DIR/supervisord.conf"
}

start_watcher() {
  [ -n "${SUP_WATCH_PID:-}" ] || return 0
  # The watcher keeps no file descriptor of the caller, so command substitution does not wait for it.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    kill -0 "$2" 2>/dev/null && exec env SUP_DIR="$3" bash "$4" stop' \
    watcher "$SUP_WATCH_PID" "$1" "$DIR" "$(readlink -f "$0")" \
    >>"$DIR/logs/watcher.log" 2>&1 </dev/null &
  echo $! >"$DIR/watcher.pid"
}

cmd_start() {
  command -v supervisord >/dev/null || { log "supervisord not found; run: bash $0 install"; exit 3; }
  if [ -f "$DIR/launch.pid" ] && kill -0 "$(cat "$DIR/launch.pid")" 2>/dev/null; then
    log "a supervisord from an earlier run is still recorded in $DIR; stopping it first"
    SUP_KEEP=0 cmd_stop
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/logs" "$DIR/programs" "$(dirname "$SOCK")"
  write_config
  setsid supervisord -c "$DIR/supervisord.conf" >"$DIR/logs/launch.out" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DIR/launch.pid"
  for _ in $(seq 1 150); do
    if supervisorctl -c "$DIR/supervisord.conf" pid >/dev/null 2>&1; then
      start_watcher "$pid"
      cmd_env
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  log "supervisord did not answer on $SOCK within 15 s:"
  cat "$DIR/logs/launch.out" "$DIR/logs/supervisord.log" >&2 2>/dev/null || true
  SUP_KEEP=1 cmd_stop
  exit 3
}

cmd_env() {
  echo "SUPERVISOR_CONF=$DIR/supervisord.conf"
  echo "SUPERVISOR_SOCKET=$(grep -m1 '^file=' "$DIR/supervisord.conf" | cut -d= -f2-)"
  echo "SUPERVISOR_PROGRAMS=$DIR/programs"
  echo "SUPERVISOR_LOGS=$DIR/logs"
  echo "SUPERVISOR_PID=$(cat "$DIR/launch.pid")"
}

cmd_stop() {
  if [ -f "$DIR/watcher.pid" ]; then
    local watcher; watcher=$(cat "$DIR/watcher.pid")
    # The watcher itself may be the caller; only stop another one.
    [ "$watcher" != "$$" ] && [ "$watcher" != "${PPID:-}" ] && kill -TERM "$watcher" 2>/dev/null || true
  fi
  if [ -f "$DIR/launch.pid" ]; then
    local pid; pid=$(cat "$DIR/launch.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "supervisord $pid ignored SIGTERM for 10 s; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  [ "${SUP_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

case "${1:-}" in
  install) cmd_install ;; start) cmd_start ;; env) cmd_env ;; stop) cmd_stop ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
