#!/usr/bin/env bash
# A second real S3-compatible server on loopback for modelgate's tests: Ceph RGW (Debian 12's
# ceph 16.2 "pacific" packages) on a one-node cluster: one monitor, one OSD on the in-memory
# "memstore" object store, and radosgw with the beast frontend. Auth (cephx) is off: everything
# binds to 127.0.0.1 and the S3 user's keys are fixed, like scripts/s3-server.sh does for Swift.
#
#   bash scripts/ceph-rgw.sh install   # apt-get the packages (idempotent)
#   bash scripts/ceph-rgw.sh start     # create the cluster + launch (no-op if running)
#   bash scripts/ceph-rgw.sh stop      # stops the daemons; memstore data is gone with them
#   bash scripts/ceph-rgw.sh status
#   eval "$(bash scripts/ceph-rgw.sh env)"
#
# Settings (environment):
#   MODELGATE_RGW_DIR    state dir (ceph.conf, mon store, OSD, logs, pids); default /tmp/modelgate-rgw
#   MODELGATE_RGW_PORT   S3 (beast) port on 127.0.0.1; default 8480. The monitor listens on
#                        PORT+10 (msgr2) and PORT+11 (msgr1); the OSD binds in PORT+20..PORT+59.
#   MODELGATE_RGW_MEMORY bytes the memstore OSD may hold (RAM); default 6 GiB
#   MODELGATE_RGW_TIMEOUT seconds `start` may take before it gives up; default 180
#
# The OSD keeps every object in memory: a stopped (or crashed) cluster has lost its data, so
# `start` builds a new cluster whenever one is not fully running, and also when the running OSD
# holds half of MODELGATE_RGW_MEMORY (test buckets are never emptied; a full run adds ~1 GiB).
# A fresh start takes ~15 s; installing the packages ~20-40 s (56 packages, ~61 MB). Nothing is written outside
# the state dir (no /etc/ceph, no systemd units are started).
set -euo pipefail

DIR="${MODELGATE_RGW_DIR:-/tmp/modelgate-rgw}"
PORT="${MODELGATE_RGW_PORT:-8480}"
MEMORY="${MODELGATE_RGW_MEMORY:-6442450944}"
TIMEOUT="${MODELGATE_RGW_TIMEOUT:-180}"
HOST=127.0.0.1
MON_PORT=$((PORT + 10))
MON_V1_PORT=$((PORT + 11))
OSD_PORT_MIN=$((PORT + 20))
OSD_PORT_MAX=$((PORT + 59))

S3_UID=modelgate
ACCESS_KEY_ID=modelgate-rgw-access-key
SECRET_ACCESS_KEY=modelgate-rgw-secret-key
REGION=us-east-1

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
SERVICES=(mon osd rgw)
CONF="$DIR/ceph.conf"

log() { printf '[ceph-rgw] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- install
cmd_install() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages already installed ($(ceph --version 2>/dev/null | cut -d' ' -f1-3))"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "install needs root (apt-get); missing: ${missing[*]}"
  log "installing: ${missing[*]}"
  local t0=$SECONDS
  # Never let the packages' maintainer scripts start daemons: we run them ourselves.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}"
  ) || rc=$?
  if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get failed (rc=$rc)"
  log "installed in $((SECONDS - t0))s ($(ceph --version | cut -d' ' -f1-3))"
}

# ---------------------------------------------------------------- helpers
pid_alive() { # pidfile
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

http_ok() { # url -> 0 when it answers 200
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

port_busy() { # port -> 0 when something listens on 127.0.0.1:port
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    sys.exit(0)
except Exception:
    sys.exit(1)
PY
}

# The ceph CLI against our monitor only, bounded in time (it would otherwise retry forever).
ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }
rgw_admin() { timeout 60 radosgw-admin -c "$CONF" -n client.admin "$@"; }

all_running() {
  local s
  for s in "${SERVICES[@]}"; do pid_alive "$DIR/run/$s.pid" || return 1; done
  http_ok "http://$HOST:$PORT/" && s3_probe
}

deadline_passed() { [ "$SECONDS" -ge "$DEADLINE" ]; }

# Fails the start with the last lines of the daemon's log when it exited.
check_alive() { # service
  if ! pid_alive "$DIR/run/$1.pid"; then
    log "$1 exited during startup; last log lines ($DIR/log/$1.log):"
    tail -n 30 "$DIR/log/$1.log" >&2 || true
    cmd_stop >/dev/null 2>&1 || true
    exit 1
  fi
}

wait_for() { # what service command...
  local what="$1" service="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    check_alive "$service"
    if deadline_passed; then
      log "timed out after ${TIMEOUT}s waiting for $what; logs in $DIR/log"
      tail -n 20 "$DIR/log/$service.log" >&2 || true
      cmd_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
}

launch() { # name command...
  local name="$1"; shift
  local pidfile="$DIR/run/$name.pid"
  if pid_alive "$pidfile"; then return 0; fi
  # setsid: each daemon leads its own process group, so `stop` can end it by group id.
  setsid "$@" >>"$DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

write_conf() { # fsid
  cat >"$CONF" <<EOF
# Written by modelgate scripts/ceph-rgw.sh (one-node test cluster, auth off, loopback only).
[global]
fsid = $1
mon_host = [v2:$HOST:$MON_PORT,v1:$HOST:$MON_V1_PORT]
public_addr = $HOST
ms_bind_ipv6 = false
ms_bind_port_min = $OSD_PORT_MIN
ms_bind_port_max = $OSD_PORT_MAX
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without cephx there is no session key to encrypt with: "secure" mode would fail, so every
# messenger negotiates crc first.
ms_cluster_mode = crc secure
ms_service_mode = crc secure
ms_client_mode = crc secure
ms_mon_cluster_mode = crc secure
ms_mon_service_mode = crc secure
ms_mon_client_mode = crc secure
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
log_to_stderr = false
err_to_stderr = true
keyring = $DIR/keyring
# One OSD: pools of one replica, placement on OSDs rather than hosts, few PGs.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon]
mon_data = $DIR/mon/\$cluster-\$id

[osd]
osd_data = $DIR/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = $MEMORY
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1

[client.rgw.gw]
rgw_frontends = beast endpoint=$HOST:$PORT
rgw_data = $DIR/rgw
rgw_thread_pool_size = 64
rgw_dns_name = $HOST
rgw_enable_usage_log = false
# The defaults are a little stricter than AWS and Swift here: allow 10,000 parts of up to 5 GiB.
rgw_multipart_part_upload_limit = 10000
# Deleted and aborted objects are queued for RGW's garbage collector, which by default waits
# 2 hours: the memstore would fill up across test and bench runs, and a full OSD blocks every
# write without an answer. Reclaim them within seconds instead.
rgw_gc_obj_min_wait = 0
rgw_gc_processor_period = 5
rgw_gc_processor_max_time = 5
EOF
}

# ---------------------------------------------------------------- start/stop
cmd_start() {
  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$b" >/dev/null || die "$b is not installed: run '$0 install' first"
  done
  mkdir -p "$DIR"
  if all_running; then
    # Every object lives in the OSD's memory and test buckets are never emptied: a cluster that
    # holds half its budget is replaced by a new, empty one rather than left to fill up.
    local rss
    rss="$(osd_rss_bytes)"
    if [ "$rss" -lt $((MEMORY / 2)) ]; then
      log "already running on http://$HOST:$PORT ($DIR)"
      return 0
    fi
    log "the OSD holds $((rss >> 20)) MiB of its $((MEMORY >> 20)) MiB: starting an empty cluster"
  fi
  # Something half-up, a stale pid file or a cluster whose memstore data went with its OSD:
  # start a new cluster from a clean slate.
  cmd_stop >/dev/null 2>&1 || true
  local p
  for p in "$PORT" "$MON_PORT" "$MON_V1_PORT"; do
    port_busy "$p" && die "port $p on $HOST is taken by another process (set MODELGATE_RGW_PORT)"
  done
  local t0=$SECONDS
  DEADLINE=$((SECONDS + TIMEOUT))
  rm -rf "${DIR:?}/mon" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR/log" "$DIR/monmap" "$DIR/keyring" "$CONF"
  mkdir -p "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/rgw" "$DIR/run" "$DIR/log"

  local fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  write_conf "$fsid"

  # The monitor: a monmap naming it, a keyring (mkfs wants one even with auth off), its store.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:$HOST:$MON_PORT,v1:$HOST:$MON_V1_PORT]" "$DIR/monmap" >/dev/null
  timeout 60 ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    >>"$DIR/log/mkfs.log" 2>&1 || { tail -n 20 "$DIR/log/mkfs.log" >&2; die "ceph-mon --mkfs failed"; }
  launch mon ceph-mon -c "$CONF" -i a -f
  wait_for "the monitor" mon ceph_cli mon stat

  # The OSD: registered with the monitor, its (memory) store made, then started.
  local id
  id="$(ceph_cli osd new "$osd_uuid")" || die "ceph osd new failed"
  [ "$id" = 0 ] || die "expected OSD id 0, the monitor gave $id"
  timeout 60 ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$DIR/log/mkfs.log" 2>&1 || { tail -n 20 "$DIR/log/mkfs.log" >&2; die "ceph-osd --mkfs failed"; }
  launch osd ceph-osd -c "$CONF" -i 0 -f
  wait_for "the OSD to come up" osd osd_up

  # radosgw creates its pools on first start; the S3 user is made once it answers.
  launch rgw radosgw -c "$CONF" -n client.rgw.gw -f
  wait_for "radosgw on http://$HOST:$PORT" rgw http_ok "http://$HOST:$PORT/"
  if ! rgw_admin user info --uid="$S3_UID" >/dev/null 2>&1; then
    rgw_admin user create --uid="$S3_UID" --display-name="modelgate tests" \
      --access-key="$ACCESS_KEY_ID" --secret-key="$SECRET_ACCESS_KEY" >>"$DIR/log/admin.log" 2>&1 ||
      { tail -n 20 "$DIR/log/admin.log" >&2; die "radosgw-admin user create failed"; }
  fi
  wait_for "a signed S3 request to be accepted" rgw s3_probe
  log "started on http://$HOST:$PORT in $((SECONDS - t0))s (state: $DIR)"
}

# Resident memory of the running OSD, in bytes (0 when unknown).
osd_rss_bytes() {
  local pid kb
  pid="$(cat "$DIR/run/osd.pid" 2>/dev/null || true)"
  kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
  echo $(( ${kb:-0} * 1024 ))
}

osd_up() { ceph_cli osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

# A SigV4-signed ListBuckets using only the Python standard library.
s3_probe() {
  python3 - "http://$HOST:$PORT" "$ACCESS_KEY_ID" "$SECRET_ACCESS_KEY" "$REGION" <<'PY' 2>/dev/null
import datetime, hashlib, hmac, sys, urllib.request
endpoint, ak, sk, region = sys.argv[1:5]
host = endpoint.split("://", 1)[1]
now = datetime.datetime.now(datetime.timezone.utc)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
signed = ";".join(sorted(headers))
canonical = "\n".join(["GET", "/", "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
scope = f"{day}/{region}/s3/aws4_request"
to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
k = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(endpoint + "/", headers={
    "x-amz-date": amz_date, "x-amz-content-sha256": payload,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"})
with urllib.request.urlopen(req, timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

stop_one() { # name
  local pidfile="$DIR/run/$1.pid" pid i
  [ -s "$pidfile" ] || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

cmd_stop() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_one "${SERVICES[$i]}"; done
  log "stopped"
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do
    if pid_alive "$DIR/run/$s.pid"; then
      printf '%-10s running (pid %s)\n' "$s" "$(cat "$DIR/run/$s.pid")"
    else
      printf '%-10s stopped\n' "$s"; rc=1
    fi
  done
  if http_ok "http://$HOST:$PORT/" && s3_probe; then
    printf 'endpoint   http://%s:%s answers signed S3 requests\n' "$HOST" "$PORT"
  else
    printf 'endpoint   http://%s:%s not answering\n' "$HOST" "$PORT"; rc=1
  fi
  return $rc
}

cmd_env() {
  cat <<EOF
export MODELGATE_RGW_ENDPOINT=http://$HOST:$PORT
export MODELGATE_RGW_ACCESS_KEY_ID=$ACCESS_KEY_ID
export MODELGATE_RGW_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
export MODELGATE_RGW_REGION=$REGION
EOF
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 {install|start|stop|restart|status|env}" >&2; exit 2 ;;
esac
