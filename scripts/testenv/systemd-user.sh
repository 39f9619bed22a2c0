#!/usr/bin/env bash
# systemd-user.sh - start a real systemd 252 user manager with its own D-Bus bus, for the tests
# that drive org.freedesktop.systemd1 over D-Bus, on a machine whose PID 1 is not systemd.
#
#   systemd-user.sh install install what the other subcommands need, with apt-get, when missing
#   systemd-user.sh start   start `systemd --user` in a private mount namespace; print KEY=value lines
#   systemd-user.sh env     print the KEY=value lines of a running instance
#   systemd-user.sh stop    SIGTERM the manager by its recorded PID, remove its cgroups and folder
#
# Use:  set -a; eval "$(bash scripts/testenv/systemd-user.sh start)"; set +a
# Then write unit files into $SD_UNIT_DIR and reload the manager (busctl --user call
# org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Reload).
#
# Environment:
#   SD_DIR        working folder (default ${TMPDIR:-/tmp}/cfyauth-test-systemd); removed by stop
#   SD_WATCH_PID  when set, a watcher stops the manager as soon as that process exits, so a test
#                 binary that dies without cleaning up leaves nothing running
#   SD_KEEP=1     keep SD_DIR after stop (to read the logs)
#
# Three things stop a plain `systemd --user` on such a machine, and this script works around each:
#  1. systemd --user exits at once unless /run/systemd/system/ exists ("the system has not been
#     booted with systemd"). The marker is created only inside a private mount namespace (a tmpfs on
#     /run/systemd), so apt, invoke-rc.d and deb-systemd-helper on the host never see it.
#  2. It needs a cgroup subtree of its own: the launcher makes one in each writable hierarchy and
#     moves itself there before it execs systemd, so the recorded PID stays the manager's.
#  3. It logs to /dev/console: inside the namespace /dev/console is bind-mounted onto a log file.
# The bus is the stock user dbus.socket/dbus.service (package dbus-user-session), socket-activated
# by this manager at $XDG_RUNTIME_DIR/bus; systemd registers org.freedesktop.systemd1 on it. A
# client written for the system bus reaches it through DBUS_SYSTEM_BUS_ADDRESS.
# Runs as root only: unshare, mount and the cgroup folders need it.
set -euo pipefail

DIR=${SD_DIR:-${TMPDIR:-/tmp}/cfyauth-test-systemd}
CG="cfyauth-sd-$(basename "$DIR")"
XDG="$DIR/xdg"
BUS="unix:path=$XDG/bus"
UNITS="$DIR/config/systemd/user"
MANAGER=(org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager)

log() { printf 'systemd-user.sh: %s\n' "$*" >&2; }
user_busctl() { XDG_RUNTIME_DIR="$XDG" DBUS_SESSION_BUS_ADDRESS="$BUS" busctl --user "$@"; }

# cgroup_roots lists the writable hierarchies systemd uses: name=systemd (v1) and unified on a
# hybrid layout, or /sys/fs/cgroup alone on a pure cgroup2 layout.
cgroup_roots() {
  local r
  for r in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do [ -f "$r/cgroup.procs" ] && echo "$r"; done
  [ -f /sys/fs/cgroup/cgroup.controllers ] && echo /sys/fs/cgroup
  return 0
}

missing_packages() {
  local missing=()
  [ -x /lib/systemd/systemd ] && command -v busctl >/dev/null || missing+=(systemd)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ -f /usr/lib/systemd/user/dbus.socket ] || missing+=(dbus-user-session)
  # A standalone dbus-daemon carries the tests' fake systemd for refusals a real one gives only to other users.
  command -v dbus-daemon >/dev/null || missing+=(dbus-daemon)
  echo "${missing[@]}"
}

cmd_install() {
  local missing; missing=$(missing_packages)
  [ -n "$missing" ] || return 0
  [ "$(id -u)" = 0 ] || { log "missing $missing; run as root or install them with apt-get"; exit 3; }
  # policy-rc.d keeps package scripts from starting services on this host.
  local added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
  [ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

check_prerequisites() {
  [ "$(id -u)" = 0 ] || { log "must run as root (unshare, mount and cgroup folders need it)"; exit 3; }
  local missing; missing=$(missing_packages)
  if [ -n "$missing" ]; then
    log "missing: $missing; install with: bash scripts/testenv/systemd-user.sh install"
    exit 3
  fi
}

write_launcher() {
  mkdir -p "$UNITS" "$DIR/logs"
  # The distro's user units that default.target would start are masked: they are not needed and
  # gpg-agent would linger.
  local unit
  for unit in dirmngr.socket gpg-agent.socket gpg-agent-browser.socket gpg-agent-extra.socket \
              gpg-agent-ssh.socket pk-debconf-helper.socket; do ln -sf /dev/null "$UNITS/$unit"; done
  cat > "$DIR/launch.sh" <<EOF
#!/bin/bash
# Becomes the systemd process: the exec chain keeps this PID.
for r in $(cgroup_roots | tr '\n' ' '); do echo \$\$ > "\$r/$CG/cgroup.procs"; done
[ -d /run/systemd ] || mkdir -p /run/systemd
exec unshare --mount --propagation private -- /bin/sh -c '
  mount -t tmpfs -o mode=755 tmpfs /run/systemd && mkdir /run/systemd/system &&
  mount --bind "$DIR/logs/console.log" /dev/console &&
  exec /lib/systemd/systemd --user --log-target=console --log-level=info'
EOF
  chmod +x "$DIR/launch.sh"
}

start_watcher() {
  [ -n "${SD_WATCH_PID:-}" ] || return 0
  local sd_pid=$1
  # The watcher keeps no file descriptor of the caller, so command substitution does not wait for it.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    kill -0 "$2" 2>/dev/null && exec env SD_DIR="$3" bash "$4" stop' \
    watcher "$SD_WATCH_PID" "$sd_pid" "$DIR" "$(readlink -f "$0")" \
    >>"$DIR/logs/watcher.log" 2>&1 </dev/null &
  echo $! > "$DIR/watcher.pid"
}

cmd_start() {
  check_prerequisites
  if [ -f "$DIR/systemd.pid" ] && kill -0 "$(cat "$DIR/systemd.pid")" 2>/dev/null; then
    log "a manager from an earlier run is still recorded in $DIR; stopping it first"
    SD_KEEP=0 cmd_stop
  fi
  rm -rf "$DIR"
  mkdir -p "$XDG" "$DIR/logs"
  chmod 700 "$XDG"
  : > "$DIR/logs/systemd.log"
  : > "$DIR/logs/console.log"
  local r
  for r in $(cgroup_roots); do mkdir -p "$r/$CG"; done
  write_launcher
  XDG_RUNTIME_DIR="$XDG" XDG_CONFIG_HOME="$DIR/config" DBUS_SESSION_BUS_ADDRESS="$BUS" \
    setsid "$DIR/launch.sh" >>"$DIR/logs/systemd.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" > "$DIR/systemd.pid"
  start_watcher "$pid"
  # The first call socket-activates dbus.service; systemd then takes its name on the bus.
  local i
  for i in $(seq 1 150); do
    if user_busctl call "${MANAGER[@]}" GetUnit s init.scope >/dev/null 2>&1; then
      cmd_env
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "systemd --user exited during start:"
      cat "$DIR/logs/systemd.log" "$DIR/logs/console.log" >&2
      SD_KEEP=1 cmd_stop
      exit 1
    fi
    sleep 0.1
  done
  log "org.freedesktop.systemd1 did not appear on $BUS within 15 s"
  cat "$DIR/logs/systemd.log" >&2
  SD_KEEP=1 cmd_stop
  exit 1
}

kv() { printf '%s=%q\n' "$1" "$2"; }

cmd_env() {
  kv SD_DIR "$DIR"
  kv SD_UNIT_DIR "$UNITS"
  kv SYSTEMD_PID "$(cat "$DIR/systemd.pid" 2>/dev/null || echo none)"
  kv XDG_RUNTIME_DIR "$XDG"
  kv DBUS_SESSION_BUS_ADDRESS "$BUS"
  kv DBUS_SYSTEM_BUS_ADDRESS "$BUS"
}

cmd_stop() {
  local pid=""
  [ -f "$DIR/systemd.pid" ] && pid=$(cat "$DIR/systemd.pid")
  if [ -f "$DIR/watcher.pid" ]; then
    local watcher; watcher=$(cat "$DIR/watcher.pid")
    [ "$watcher" != "$$" ] && kill -TERM "$watcher" 2>/dev/null || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # For a user manager SIGTERM means "start exit.target": it stops its units and the bus, then exits.
    kill -TERM "$pid"
    local i
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "systemd $pid still running 15 s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Whatever is still in this manager's cgroup was started by it; then remove the folders, leaves first.
  local r p
  for r in $(cgroup_roots); do
    [ -d "$r/$CG" ] || continue
    for p in $(find "$r/$CG" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      log "process $p left in $CG; sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    done
    sleep 0.1
    find "$r/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove $r/$CG"
  done
  [ "${SD_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  env) cmd_env ;;
  stop) cmd_stop ;;
  *) sed -n '2,31p' "$0" >&2; exit 2 ;;
esac
