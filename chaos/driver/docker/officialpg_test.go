package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// officialEntrypoint stands in, in tests, for the official postgres
// image's docker-entrypoint.sh (no registry here to pull postgres:15
// from): the same interface, not its code. A first argument that is a
// flag means postgres; as root it makes PGDATA and the socket folder the
// postgres user's and runs itself again as that user; a PGDATA without
// PG_VERSION is initialised by initdb as POSTGRES_USER (postgres), with
// POSTGRES_PASSWORD, refusing to start with neither it nor
// POSTGRES_HOST_AUTH_METHOD=trust, and its pg_hba.conf lets every host
// in with that method for all databases, but replication only from the
// loopback (initdb's own lines), as the official image's does. It has no
// /docker-entrypoint-initdb.d and no temporary server.
const officialEntrypoint = `#!/bin/sh
set -eu
if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
uid=
while read -r k v rest; do
	if [ "$k" = Uid: ]; then uid=$v; fi
done </proc/self/status
if [ "$1" = postgres ] && [ "$uid" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		echo "Error: Database is uninitialized and superuser password is not specified." >&2
		exit 1
	fi
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
		initdb -D "$PGDATA" --username="${POSTGRES_USER:-postgres}" --pwfile=/tmp/pwfile
	else
		initdb -D "$PGDATA" --username="${POSTGRES_USER:-postgres}"
	fi
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
	echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
`

// officialPostgresImage builds (once; then cached by its tag) an image
// with the interface of the official postgres image, made of this
// machine's PostgreSQL packages like lossbench/postgres: entrypoint
// officialEntrypoint run as root, CMD postgres, PGDATA
// /var/lib/postgresql/data (an empty folder the postgres user owns), the
// server's programs on the PATH, no data folder initialised at build
// time, and a shell with the few programs the entrypoint runs.
func officialPostgresImage(t *testing.T, cli *client.Client) Image {
	t.Helper()
	ctx := t.Context()
	r, err := postgresRecipe()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	tools := []string{"/bin/sh", "/usr/bin/dash", "/usr/bin/setpriv", "/usr/bin/mkdir", "/usr/bin/chown", "/usr/bin/chmod"}
	for _, p := range tools {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: the official-like image needs %s: %v", p, err)
		}
	}
	libs, err := lddClosure(ctx, tools[1:])
	if err != nil {
		t.Fatal(err)
	}
	major := strings.TrimPrefix(r.packages[0], "postgresql-")
	if _, err := strconv.Atoi(major); err != nil {
		t.Fatalf("postgres recipe package %s: no major version", r.packages[0])
	}
	r.repo = "lossbench/postgres-official-test"
	r.extra = append(append(r.extra, tools...), libs...)
	r.files = append(r.files, imageFile{"usr/local/bin/docker-entrypoint.sh", 0o755, []byte(officialEntrypoint)})
	r.initData = func(ctx context.Context, dir string) (string, error) {
		data := filepath.Join(dir, "data")
		if err := os.Mkdir(data, 0o700); err != nil {
			return "", err
		}
		return data, os.Chmod(data, 0o777)
	}
	r.changes = []string{"ENV TZ=UTC", "ENV PGDATA=" + postgresData,
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/" + major + "/bin",
		"VOLUME " + postgresData, "EXPOSE " + postgresPort,
		`ENTRYPOINT ["docker-entrypoint.sh"]`, `CMD ["postgres"]`}
	img, err := recipeImage(ctx, cli, r)
	if err != nil {
		t.Fatal(err)
	}
	if img.Build > 0 {
		t.Logf("built %s (%.1f MB) in %s", img.Ref, float64(img.Size)/1e6, img.Build)
	}
	// The name a user would give it: tagged like an official image.
	named := fmt.Sprintf("lossbench-test/postgres:%s-official-%d", major, os.Getpid())
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: img.Ref, Target: named}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ImageRemove(context.Background(), named, client.ImageRemoveOptions{}) })
	img.Ref = named
	return img
}
