#!/usr/bin/env bash
# apt-install.sh NAME PKG... installs Debian packages the harness starts as
# child processes (database servers, peer brokers), for
# chaos/dbserver/install.sh and chaos/bench/install-peers.sh (NAME labels
# the messages). Run as root (Debian/Ubuntu, apt). The packages' own
# system services are kept from starting (policy-rc.d): the harness never
# uses them, and they must not hold the default ports. A caller stops any
# that started anyway.
set -euo pipefail

name=$1
shift
if [ $# -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$name: need root to apt-get install $*" >&2
	exit 2
fi

# Keep the packages' init scripts from starting services during install.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
echo "$name: installed $*"
