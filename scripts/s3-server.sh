#!/usr/bin/env bash
# A real S3-compatible server on loopback for modelgate's tests, benchmarks and
# demo: OpenStack Swift (Debian 12 packages) with its s3api middleware and
# tempauth, as a single-node "all in one" (1 replica) under a state directory.
#
#   bash scripts/s3-server.sh install   # apt-get the packages (idempotent)
#   bash scripts/s3-server.sh start     # configure + launch (no-op if running)
#   bash scripts/s3-server.sh stop
#   bash scripts/s3-server.sh status
#   eval "$(bash scripts/s3-server.sh env)"
#
# Settings (environment):
#   MODELGATE_S3_DIR   state dir (config, rings, data, logs, pids); default /tmp/modelgate-s3
#   MODELGATE_S3_PORT  proxy (S3) port on 127.0.0.1; default 8380. The storage
#                      servers use PORT+11 (object), PORT+12 (container),
#                      PORT+13 (account) and memcached PORT+1, all on 127.0.0.1.
#
# Credentials are fixed (tempauth user "modelgate:admin"); region us-east-1;
# path-style addressing only. Everything binds to 127.0.0.1.
#
# Note: Swift reads its cluster-wide settings (hash path prefix/suffix and
# the constraints such as max_file_size) from /etc/swift/swift.conf only, so
# `start` writes that one file; everything else lives in the state dir.
set -euo pipefail

DIR="${MODELGATE_S3_DIR:-/tmp/modelgate-s3}"
PORT="${MODELGATE_S3_PORT:-8380}"
HOST=127.0.0.1
MEMCACHE_PORT=$((PORT + 1))
OBJECT_PORT=$((PORT + 11))
CONTAINER_PORT=$((PORT + 12))
ACCOUNT_PORT=$((PORT + 13))

S3_ACCOUNT=modelgate
S3_USER=admin
ACCESS_KEY_ID="${S3_ACCOUNT}:${S3_USER}"
SECRET_ACCESS_KEY="modelgate-secret-key"
REGION=us-east-1

# 10 GiB: single PUTs up to 10 GiB, and each multipart part may be that large.
MAX_FILE_SIZE=10737418240

PACKAGES=(swift swift-proxy swift-account swift-container swift-object python3-swift memcached)
SERVICES=(memcached account container object proxy)

log() { printf '[s3-server] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- install
cmd_install() {
  local missing=()
  local p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages already installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "install needs root (apt-get); missing: ${missing[*]}"
  log "installing: ${missing[*]}"
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
  log "installed"
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

supports_xattr() { # dir
  python3 - "$1" <<'PY' 2>/dev/null
import os, sys, tempfile
fd, path = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(path, "user.modelgate.probe", b"1")
    sys.exit(0 if os.getxattr(path, "user.modelgate.probe") == b"1" else 1)
except OSError:
    sys.exit(1)
finally:
    os.close(fd)
    os.unlink(path)
PY
}

all_running() {
  local s
  for s in "${SERVICES[@]}"; do pid_alive "$DIR/run/$s.pid" || return 1; done
  http_ok "http://$HOST:$PORT/healthcheck"
}

# Pick a devices root whose filesystem supports user xattrs (Swift stores
# object metadata in them). Prints the path.
choose_devices_root() {
  local root="$DIR/srv"
  mkdir -p "$root"
  if mountpoint -q "$root" 2>/dev/null || supports_xattr "$root"; then
    echo "$root"; return 0
  fi
  log "$root: no user xattr support; trying alternatives"
  local shm="/dev/shm/modelgate-s3-$(printf '%s' "$DIR" | md5sum | cut -c1-8)"
  if mkdir -p "$shm" 2>/dev/null && supports_xattr "$shm"; then
    log "using tmpfs $shm for object data (held in RAM)"
    echo "$shm"; return 0
  fi
  # Last resort: a sparse ext4 image mounted through a loop device (root only).
  local img="$DIR/disk.img"
  if [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null; then
    [ -f "$img" ] || { truncate -s 64G "$img" && mkfs.ext4 -q -F "$img"; }
    if mount -o loop,noatime "$img" "$root" 2>/dev/null && supports_xattr "$root"; then
      log "using loopback ext4 image $img"
      echo "$root"; return 0
    fi
  fi
  die "no filesystem with user xattr support found (tried $root, $shm, loop image)"
}

write_configs() { # devices_root
  local devices="$1" user
  user="$(id -un)"
  mkdir -p "$DIR/etc" "$DIR/run" "$DIR/log" "$DIR/cache" "$devices/d1"

  # Cluster-wide settings: Swift only ever reads /etc/swift/swift.conf.
  local swift_conf
  swift_conf="$(cat <<EOF
# Written by modelgate scripts/s3-server.sh (single-node test cluster).
[swift-hash]
swift_hash_path_suffix = modelgate-test-suffix
swift_hash_path_prefix = modelgate-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
max_file_size = $MAX_FILE_SIZE
max_meta_overall_size = 8192
container_listing_limit = 10000
EOF
)"
  mkdir -p /etc/swift
  if [ ! -f /etc/swift/swift.conf ] || [ "$(cat /etc/swift/swift.conf)" != "$swift_conf" ]; then
    if [ -f /etc/swift/swift.conf ] && [ ! -f /etc/swift/swift.conf.before-modelgate ]; then
      cp /etc/swift/swift.conf /etc/swift/swift.conf.before-modelgate
    fi
    printf '%s\n' "$swift_conf" >/etc/swift/swift.conf
  fi

  local common
  common="$(cat <<EOF
swift_dir = $DIR/etc
user = $user
devices = $devices
mount_check = false
bind_ip = $HOST
log_level = INFO
log_address = /dev/null
EOF
)"

  # The three storage servers differ only in name, port, workers and a few tuning lines.
  server_conf() { # name port workers default-extra app-extra
    cat >"$DIR/etc/$1-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $2
workers = $3
$4
[pipeline:main]
pipeline = healthcheck $1-server

[app:$1-server]
use = egg:swift#$1
$5
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  }
  server_conf account "$ACCOUNT_PORT" 1 "" ""
  server_conf container "$CONTAINER_PORT" 1 "" ""
  server_conf object "$OBJECT_PORT" 2 \
    $'network_chunk_size = 1048576\ndisk_chunk_size = 1048576\n' \
    $'max_upload_time = 86400\nnode_timeout = 60\n'

  cat >"$DIR/etc/proxy-server.conf" <<EOF
[DEFAULT]
swift_dir = $DIR/etc
user = $user
bind_ip = $HOST
bind_port = $PORT
workers = 2
log_level = INFO
log_address = /dev/null
client_timeout = 300

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
node_timeout = 120
conn_timeout = 5
recoverable_node_timeout = 120
object_chunk_size = 1048576
client_chunk_size = 1048576

[filter:s3api]
use = egg:swift#s3api
location = $REGION
allow_multipart_uploads = true
# S3 allows 10000 parts; Swift's default is 1000 (5 MiB parts => < 5 GiB).
max_upload_part_num = 10000
max_parts_listing = 10000
min_segment_size = 5242880
dns_compliant_bucket_names = true
s3_acl = false
check_bucket_owner = false
allowable_clock_skew = 900

[filter:tempauth]
use = egg:swift#tempauth
user_${S3_ACCOUNT}_${S3_USER} = $SECRET_ACCESS_KEY .admin .reseller_admin

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 67108864
min_segment_size = 1

[filter:dlo]
use = egg:swift#dlo

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:cache]
use = egg:swift#memcache
memcache_servers = $HOST:$MEMCACHE_PORT

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging
EOF
}

build_rings() {
  local stamp="$DIR/etc/rings.stamp" want
  want="$HOST:$ACCOUNT_PORT:$CONTAINER_PORT:$OBJECT_PORT"
  if [ -f "$DIR/etc/object.ring.gz" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local ring port rc
  for ring in account container object; do
    case $ring in
      account) port=$ACCOUNT_PORT ;;
      container) port=$CONTAINER_PORT ;;
      object) port=$OBJECT_PORT ;;
    esac
    rm -f "$DIR/etc/$ring.builder" "$DIR/etc/$ring.ring.gz"
    swift-ring-builder "$DIR/etc/$ring.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$DIR/etc/$ring.builder" add "r1z1-$HOST:$port/d1" 100 >/dev/null
    rc=0
    swift-ring-builder "$DIR/etc/$ring.builder" rebalance >/dev/null || rc=$?
    # 1 = "rebalanced with warnings"; anything else is an error.
    [ "$rc" -le 1 ] && [ -f "$DIR/etc/$ring.ring.gz" ] || die "building $ring ring failed (rc=$rc)"
  done
  echo "$want" >"$stamp"
}

launch() { # name command...
  local name="$1"; shift
  local pidfile="$DIR/run/$name.pid"
  if pid_alive "$pidfile"; then return 0; fi
  # setsid: each daemon leads its own process group, so `stop` can end it
  # and its workers by group id without touching anything else.
  setsid "$@" >>"$DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# ---------------------------------------------------------------- start/stop
cmd_start() {
  command -v swift-proxy-server >/dev/null || die "swift is not installed: run '$0 install' first"
  command -v memcached >/dev/null || die "memcached is not installed: run '$0 install' first"
  mkdir -p "$DIR"
  if all_running; then
    log "already running on http://$HOST:$PORT ($DIR)"
    return 0
  fi
  # Something half-up (or a stale pid file): start from a clean slate.
  cmd_stop >/dev/null 2>&1 || true
  if port_busy "$PORT"; then
    die "port $PORT on $HOST is taken by another process (set MODELGATE_S3_PORT)"
  fi
  local t0=$SECONDS devices
  devices="$(choose_devices_root)"
  write_configs "$devices"
  build_rings

  launch memcached memcached -l "$HOST" -p "$MEMCACHE_PORT" -U 0 -m 64 -u "$(id -un)"
  launch account swift-account-server "$DIR/etc/account-server.conf" -v
  launch container swift-container-server "$DIR/etc/container-server.conf" -v
  launch object swift-object-server "$DIR/etc/object-server.conf" -v
  launch proxy swift-proxy-server "$DIR/etc/proxy-server.conf" -v

  local deadline=$((SECONDS + 60)) s
  until http_ok "http://$HOST:$ACCOUNT_PORT/healthcheck" &&
        http_ok "http://$HOST:$CONTAINER_PORT/healthcheck" &&
        http_ok "http://$HOST:$OBJECT_PORT/healthcheck" &&
        http_ok "http://$HOST:$PORT/healthcheck"; do
    for s in "${SERVICES[@]}"; do
      if ! pid_alive "$DIR/run/$s.pid"; then
        log "$s exited during startup; last log lines ($DIR/log/$s.log):"
        tail -n 30 "$DIR/log/$s.log" >&2 || true
        cmd_stop >/dev/null 2>&1 || true
        exit 1
      fi
    done
    if [ $SECONDS -ge $deadline ]; then
      log "timed out waiting for the servers; logs in $DIR/log"
      cmd_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.2
  done
  # End to end: a signed S3 request must be accepted (also creates the account).
  deadline=$((SECONDS + 30))
  until s3_probe; do
    if [ $SECONDS -ge $deadline ]; then
      log "S3 API does not accept requests; logs in $DIR/log"
      exit 1
    fi
    sleep 0.3
  done
  log "started on http://$HOST:$PORT in $((SECONDS - t0))s (state: $DIR)"
}

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
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Workers of that group that outlived their parent.
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

cmd_stop() {
  local s i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    s="${SERVICES[$i]}"
    stop_one "$s"
  done
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
  if http_ok "http://$HOST:$PORT/healthcheck"; then
    printf 'endpoint   http://%s:%s answers\n' "$HOST" "$PORT"
  else
    printf 'endpoint   http://%s:%s not answering\n' "$HOST" "$PORT"; rc=1
  fi
  return $rc
}

cmd_env() {
  cat <<EOF
export MODELGATE_S3_ENDPOINT=http://$HOST:$PORT
export AWS_ACCESS_KEY_ID=$ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
export AWS_REGION=$REGION
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
