#!/usr/bin/env bash
# install-peers.sh installs the peer brokers `lossbench bench` measures
# beside refbroker: Apache ActiveMQ Classic from Debian's package (started
# by the bench from /usr/share/activemq with a configuration of its own),
# and for its JDBC store the PostgreSQL JDBC driver and the connection
# pool ActiveMQ's lib/optional links to (commons-dbcp 1.4 and commons-pool
# 1.6, only recommended by the package, so named here). With --rabbitmq it
# also installs rabbitmq-server. It is idempotent: when everything asked
# for is present it does nothing. Run as root (Debian/Ubuntu, apt). The
# packages' own system services are kept from starting (policy-rc.d, in
# chaos/apt-install.sh) and stopped if they did start: the bench never uses
# them, and they must not hold the default ports.
set -euo pipefail

want_rabbit=
for a in "$@"; do
	case $a in
	--rabbitmq) want_rabbit=1 ;;
	*)
		echo "usage: install-peers.sh [--rabbitmq]" >&2
		exit 2
		;;
	esac
done

pkgs=()
[ -f /usr/share/activemq/bin/activemq.jar ] || pkgs+=(activemq)
[ -f /usr/share/java/postgresql.jar ] || pkgs+=(libpostgresql-jdbc-java)
[ -f /usr/share/java/commons-dbcp.jar ] || pkgs+=(libcommons-dbcp-java)
[ -f /usr/share/java/commons-pool.jar ] || pkgs+=(libcommons-pool-java)
if [ -n "$want_rabbit" ] && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
	pkgs+=(rabbitmq-server)
fi
if [ ${#pkgs[@]} -eq 0 ]; then
	echo "bench/install-peers.sh: peer brokers already installed"
	exit 0
fi
bash "$(dirname "$0")/../apt-install.sh" bench/install-peers.sh "${pkgs[@]}"

# If a service started anyway (no policy-rc.d honoured), stop it. Only
# when it runs: rabbitmq-server's init script stops the node through
# rabbitmqctl, which itself leaves an epmd daemon on port 4369 behind.
if command -v service >/dev/null 2>&1; then
	if pgrep -u activemq java >/dev/null 2>&1; then
		service activemq stop >/dev/null 2>&1 || true
	fi
	if pgrep -u rabbitmq beam.smp >/dev/null 2>&1; then
		service rabbitmq-server stop >/dev/null 2>&1 || true
	fi
fi
