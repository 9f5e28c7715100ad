#!/usr/bin/env bash
# A throwaway single-node Ceph with the RADOS Gateway on loopback, for the
# conformance suite: one monitor, one in-memory OSD, no authentication.
#
#   scripts/ceph-rgw.sh start DIR RGW_PORT MON_PORT   # prints "ready" when RGW answers
#   scripts/ceph-rgw.sh stop DIR
#   scripts/ceph-rgw.sh install                       # apt-get the packages (root)
#
# The S3 user is "conformance" with the keys in DIR/s3-keys (access, secret).
# CEPH_MEMSTORE_BYTES sizes the in-memory OSD (default 1 GiB; the benchmark's
# large objects need more).
set -euo pipefail

cmd=${1:?usage: ceph-rgw.sh start|stop|install ...}

if [ "$cmd" = install ]; then
  if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null; then
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null
  exit 0
fi

dir=${2:?a working directory}
conf="$dir/ceph.conf"

if [ "$cmd" = stop ]; then
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  exit 0
fi

rgw_port=${3:?an RGW port}
mon_port=${4:?a monitor port}
mkdir -p "$dir"/{run,log,mon.a,osd.0,rgw}
fsid=$(uuidgen)
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
ms bind ipv6 = false
ms bind ipv4 = true
public addr = 127.0.0.1
cluster addr = 127.0.0.1
mon data avail warn = 1
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# The "none" method only speaks crc mode; without this the gateway finds no usable mode.
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
ms mon service mode = crc
ms service mode = crc
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-1073741824}
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
[mon.a]
mon data = $dir/mon.a
[osd.0]
osd data = $dir/osd.0
[client.rgw.conformance]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw dns name = localhost
CONF

monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null
quiet() { "$@" </dev/null >/dev/null 2>&1; }  # daemons must not hold our output open
quiet ceph-mon -c "$conf" -i a
osd_uuid=$(uuidgen)
ceph -c "$conf" osd new "$osd_uuid" >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
quiet ceph-osd -c "$conf" -i 0
quiet radosgw -c "$conf" -n client.rgw.conformance

for _ in $(seq 240); do
  if curl -s -o /dev/null -m 1 "http://127.0.0.1:$rgw_port/"; then
    break
  fi
  sleep 0.25
done
access=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
radosgw-admin -c "$conf" -n client.rgw.conformance user create --uid=conformance \
  --display-name=conformance --access-key="$access" --secret-key="$secret" >/dev/null
printf '%s\n%s\n' "$access" "$secret" > "$dir/s3-keys"
echo ready
