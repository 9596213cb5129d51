#!/usr/bin/env bash
# install.sh installs the PostgreSQL and MariaDB server binaries that
# chaos/dbserver starts as child processes (tests, harness, bench). It is
# idempotent: when both are already present it does nothing. Run as root
# (Debian/Ubuntu, apt). The packages' own system services are kept from
# starting (policy-rc.d) and stopped if they did start: dbserver never uses
# them, and they must not hold the default ports.
set -euo pipefail

have_pg() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }
have_maria() {
	command -v mariadb-install-db >/dev/null 2>&1 &&
		{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; }
}

pkgs=()
have_pg || pkgs+=(postgresql)
have_maria || pkgs+=(mariadb-server)
if [ ${#pkgs[@]} -eq 0 ]; then
	echo "dbserver/install.sh: postgresql and mariadb-server already installed"
	exit 0
fi
bash "$(dirname "$0")/../apt-install.sh" dbserver/install.sh "${pkgs[@]}"

# If a service started anyway (no policy-rc.d honoured), stop it.
for svc in postgresql mariadb mysql; do
	if command -v service >/dev/null 2>&1; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done
