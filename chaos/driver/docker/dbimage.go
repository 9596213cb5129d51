package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Database images. No registry is reachable here, so the PostgreSQL and
// MariaDB images are made from the Debian packages installed on this
// machine (make deps installs them for the local driver anyway): the
// server's files as dpkg -L lists them (without documentation; for
// PostgreSQL the client package's too, for pg_basebackup; for MariaDB
// galera-4 and what its rsync state transfer runs), every
// shared library their programs load (the ldd closure, with the dynamic
// loader), a few zone files, an /etc/passwd, and a data folder
// initialised at build time by the package's own initdb or
// mariadb-install-db, owned by uid 999 inside the image. docker import
// makes the image; its entrypoint is the server itself (no shell, no
// init script), run as uid 999. A named volume mounted on the data folder
// gets that initialised folder on first use (Docker copies an image's
// folder into an empty volume), so a database starts in a second.
//
// It was chosen over debootstrap (a root filesystem from the mirror, then
// apt-get install in it): that needs the mirror at build time, takes
// minutes and a few hundred MB, while this takes seconds, works offline
// and is exactly the server the local driver runs. The image is tagged by
// the SHA-256 of its recipe and the packages' versions, so it is rebuilt
// only when a package is upgraded. A user with a registry names official
// images instead (lossbench run --postgres-image postgres:15
// --mariadb-image mariadb:10.11): the driver starts every image the same
// way (see dbContainer), and the official images honour it.
const (
	PostgresRepo = "lossbench/postgres"
	MariaDBRepo  = "lossbench/mariadb"
)

// dbRecipeVersion changes whenever what the recipes put in an image
// changes, so an old tag is not reused.
const dbRecipeVersion = "4"

// dbUID owns the data folder inside a database image and runs the server.
const dbUID = 999

// DB ports inside a database container, and its data folder.
const (
	postgresPort = "5432"
	mariaPort    = "3306"
	postgresData = "/var/lib/postgresql/data"
	mariaData    = "/var/lib/mysql"
)

// mariaUser and mariaPassword are the account the brokers use on a
// MariaDB container; the official image makes it from MARIADB_USER and
// MARIADB_PASSWORD, ours from its init file.
const (
	mariaUser     = "lossbench"
	mariaPassword = "lossbench"
)

// dbRecipe is how one database image is made from this machine's files.
type dbRecipe struct {
	kind     string // what the image runs (postgres, mariadb, rabbitmq)
	repo     string
	packages []string // Debian packages whose files go in
	skip     func(path string) bool
	extra    []string // more files of the host (followed through symlinks)
	// from are the packages extra's files come from: their versions tag
	// the image as packages' do.
	from []string
	// initData initialises a data folder in dir (on the host) and returns
	// it; it goes into the image at dataAt. nil: the image has none.
	initData func(ctx context.Context, dir string) (string, error)
	dataAt   string
	files    []imageFile // written as they are (passwd, init files)
	changes  []string    // docker import --change lines
}

// skipDocs leaves out documentation, manuals, translations, and
// PostgreSQL's JIT (LLVM's bitcode and llvmjit.so, which alone would pull
// in a 110 MB libLLVM; the images run with jit=off).
func skipDocs(p string) bool {
	for _, s := range []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/locale/", "/usr/share/lintian/", "/bitcode/", "/llvmjit"} {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

const dbPasswd = "root:x:0:0:root:/root:/nonexistent\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/nonexistent\nmysql:x:999:999:MariaDB:/var/lib/mysql:/nonexistent\n"
const dbGroup = "root:x:0:\npostgres:x:999:\nmysql:x:999:\n"

// postgresRecipe is the newest PostgreSQL major installed here.
func postgresRecipe() (dbRecipe, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	major := 0
	for _, d := range dirs {
		if n, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(d)))); err == nil && n > major {
			major = n
		}
	}
	if major == 0 {
		return dbRecipe{}, errors.New("docker: postgres image: no PostgreSQL installed on this machine (/usr/lib/postgresql/*/bin/postgres; make deps installs it)")
	}
	m := strconv.Itoa(major)
	bin := "/usr/lib/postgresql/" + m + "/bin/"
	return dbRecipe{kind: string(scenario.Postgres), repo: PostgresRepo, packages: []string{"postgresql-" + m, "postgresql-client-" + m}, skip: skipDocs,
		extra:  []string{"/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"},
		dataAt: postgresData,
		initData: func(ctx context.Context, dir string) (string, error) {
			data := filepath.Join(dir, "data")
			if err := runAs(ctx, "postgres", dir, []string{"TZ=UTC"}, bin+"initdb", "-D", data, "--auth=trust",
				"--username=postgres", "--encoding=UTF8", "--no-locale", "--no-instructions"); err != nil {
				return "", err
			}
			// Brokers reach the server from their site networks, and so
			// do standbys (pg_basebackup, streaming replication: the
			// client package brings pg_basebackup into the image).
			f, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return "", err
			}
			_, err = f.WriteString("host all all 0.0.0.0/0 trust\nhost replication all 0.0.0.0/0 trust\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return data, err
		},
		files: []imageFile{{"etc/passwd", 0o644, []byte(dbPasswd)}, {"etc/group", 0o644, []byte(dbGroup)}},
		changes: []string{
			"USER 999:999", "ENV TZ=UTC", "ENV PGDATA=" + postgresData, "EXPOSE " + postgresPort,
			`ENTRYPOINT ["` + bin + `postgres", "-D", "` + postgresData + `", "-c", "unix_socket_directories=", "-c", "timezone=UTC", "-c", "log_timezone=UTC", "-c", "jit=off"]`,
			`CMD ["-c", "listen_addresses=*"]`,
		}}, nil
}

// mariaInit runs at every start of our MariaDB image: the brokers'
// account.
const mariaInit = "CREATE USER IF NOT EXISTS '" + mariaUser + "'@'%' IDENTIFIED BY '" + mariaPassword + "';\n" +
	"GRANT ALL PRIVILEGES ON *.* TO '" + mariaUser + "'@'%';\n"

// galeraPackages are what a Galera node needs beside the server (Debian's
// mariadb-server depends on every one, so make deps installs them): the
// provider library, and the programs of the rsync state transfer, a bash
// script (wsrep_sst_rsync) that MariaDB runs on the joiner and the donor.
var galeraPackages = []string{"galera-4", "bash", "dash", "coreutils", "grep", "sed", "gawk", "procps", "iproute2",
	"findutils", "rsync", "hostname", "tar"}

// galeraFiles are the host files of the state transfer outside those
// packages: the scripts (mariadb-server's), the configuration parser
// they call (mariadb-client-core's, libc only) and awk (an alternative).
var galeraFiles = []string{"/usr/bin/wsrep_sst_common", "/usr/bin/wsrep_sst_rsync", "/usr/bin/my_print_defaults", "/usr/bin/awk"}

// galeraLib is the Galera provider in the MariaDB image.
const galeraLib = "/usr/lib/galera/libgalera_smm.so"

func mariaRecipe() (dbRecipe, error) {
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
		return dbRecipe{}, errors.New("docker: mariadb image: no MariaDB installed on this machine (/usr/sbin/mariadbd; make deps installs it)")
	}
	// The image carries Galera too: a mariadb database with replicas
	// runs its servers as a Galera cluster (galera.go).
	return dbRecipe{kind: string(scenario.MariaDB), repo: MariaDBRepo, packages: append([]string{"mariadb-server-core"}, galeraPackages...), skip: skipDocs,
		extra: galeraFiles, from: []string{"mariadb-server", "mariadb-client-core"},
		dataAt: mariaData,
		initData: func(ctx context.Context, dir string) (string, error) {
			data := filepath.Join(dir, "data")
			err := runAs(ctx, "", dir, nil, "mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
				"--auth-root-authentication-method=normal", "--skip-test-db")
			return data, err
		},
		files: []imageFile{{"etc/passwd", 0o644, []byte(dbPasswd)}, {"etc/group", 0o644, []byte(dbGroup)},
			{"etc/lossbench/init.sql", 0o644, []byte(mariaInit)},
			// A Galera node finds its peers by name: /etc/hosts (the
			// driver's entries) before the engine's DNS.
			{"etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")}},
		changes: []string{
			"USER 999:999", "EXPOSE " + mariaPort,
			`ENTRYPOINT ["/usr/sbin/mariadbd", "--no-defaults", "--datadir=` + mariaData + `", "--init-file=/etc/lossbench/init.sql", "--tmpdir=/tmp", "--socket=/tmp/mariadbd.sock", "--pid-file=/tmp/mariadbd.pid", "--lc-messages-dir=/usr/share/mysql", "--skip-name-resolve"]`,
			`CMD ["--bind-address=0.0.0.0"]`,
		}}, nil
}

func recipeOf(kind scenario.DatabaseKind) (dbRecipe, error) {
	switch kind {
	case scenario.Postgres:
		return postgresRecipe()
	case scenario.MariaDB:
		return mariaRecipe()
	}
	return dbRecipe{}, fmt.Errorf("docker: no image for database kind %q", kind)
}

// DatabaseImage returns the image of database kind (postgres, mariadb)
// made from this machine's Debian packages, building it when its tag is
// missing (a few seconds; see PostgresRepo).
func DatabaseImage(ctx context.Context, cli *client.Client, kind scenario.DatabaseKind) (Image, error) {
	r, err := recipeOf(kind)
	if err != nil {
		return Image{}, err
	}
	return recipeImage(ctx, cli, r)
}

// recipeImage returns recipe r's image, building it when its tag (the
// recipe and its packages' versions) is missing.
func recipeImage(ctx context.Context, cli *client.Client, r dbRecipe) (Image, error) {
	versions, err := packageVersions(ctx, slices.Concat(r.packages, r.from))
	if err != nil {
		return Image{}, fmt.Errorf("docker: %s image: %w", r.kind, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n%q\n", dbRecipeVersion, versions, r.changes, r.extra)
	for _, f := range r.files {
		fmt.Fprintf(h, "%s %o %q\n", f.name, f.mode, f.body)
	}
	ref := r.repo + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if in, err := cli.ImageInspect(ctx, ref); err == nil {
		return Image{Ref: ref, ID: in.ID, Size: in.Size}, nil
	}
	return buildDBImage(ctx, cli, r, ref)
}

// packageVersions is "name version" of each package, one a line, or an
// error naming the packages not installed.
func packageVersions(ctx context.Context, pkgs []string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", append([]string{"-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n"}, pkgs...)...).Output()
	if err != nil {
		return "", fmt.Errorf("the Debian packages %v must be installed on this machine (dpkg-query: %v; make deps installs them)", pkgs, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[2] != "ii" {
			return "", fmt.Errorf("package %q is not installed (dpkg-query says %q; make deps installs it)", f[0], l)
		}
		lines = append(lines, f[0]+" "+f[1])
	}
	return strings.Join(lines, "\n"), nil
}

// runAs runs a setup program on the host, as OS user name ("" is the
// caller; initdb refuses root), in dir, which it then owns.
func runAs(ctx context.Context, name, dir string, env []string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if name != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(name)
		if err != nil {
			return fmt.Errorf("%s: no OS user %s on this machine: %w", filepath.Base(argv[0]), name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(argv[0]), err, bytes.TrimSpace(b))
	}
	return nil
}

// buildDBImage assembles recipe r's root filesystem as a tar and imports
// it as ref.
func buildDBImage(ctx context.Context, cli *client.Client, r dbRecipe, ref string) (Image, error) {
	t0 := time.Now()
	fail := func(err error) (Image, error) {
		return Image{}, fmt.Errorf("docker: build %s image %s: %w", r.kind, ref, err)
	}
	rt := newRootTar()
	var elfs []string
	for _, pkg := range r.packages {
		out, err := exec.CommandContext(ctx, "dpkg", "-L", pkg).Output()
		if err != nil {
			return fail(fmt.Errorf("dpkg -L %s: %v", pkg, err))
		}
		for _, p := range strings.Split(string(out), "\n") {
			if p == "" || p == "/." || r.skip(p) {
				continue
			}
			elf, err := rt.addListed(p)
			if err != nil {
				return fail(err)
			}
			if elf {
				elfs = append(elfs, p)
			}
		}
	}
	libs, err := lddClosure(ctx, elfs)
	if err != nil {
		return fail(err)
	}
	for _, p := range slices.Concat(libs, r.extra) {
		if err := rt.addHost(p); err != nil {
			return fail(err)
		}
	}
	for _, f := range r.files {
		rt.addFile(f.name, f.mode, 0, f.body)
	}
	rt.addDir("tmp", 0o1777, 0)
	rt.addDir("run", 0o755, 0)
	if r.initData != nil {
		if err := addInitData(ctx, rt, r); err != nil {
			return fail(err)
		}
	}
	body, err := rt.close()
	if err != nil {
		return fail(err)
	}
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(body), SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: append(slices.Clone(r.changes), "LABEL "+LabelRole+"=image"),
			Message: "lossbench " + r.kind + " image from this machine's Debian packages"})
	if err != nil {
		return fail(err)
	}
	_, _ = io.Copy(io.Discard, res)
	res.Close()
	in, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return fail(fmt.Errorf("after its import: %w", err))
	}
	return Image{Ref: ref, ID: in.ID, Size: in.Size, Build: time.Since(t0), Dangling: len(rt.dangling)}, nil
}

// addInitData initialises recipe r's data folder in a temporary folder
// and adds it to rt at r.dataAt, owned by dbUID.
func addInitData(ctx context.Context, rt *rootTar, r dbRecipe) error {
	tmp, err := os.MkdirTemp("", "lossbench-dbimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	data, err := r.initData(ctx, tmp)
	if err != nil {
		return fmt.Errorf("initialise its data folder: %w", err)
	}
	return rt.addTree(data, strings.TrimPrefix(r.dataAt, "/"), dbUID)
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == "\x7fELF"
}

// lddClosure is every shared library (and the dynamic loader) the ELF
// files load, as ldd resolves them on this machine. A library ldd does
// not find is left out: only an optional module of the package needs it.
func lddClosure(ctx context.Context, elfs []string) ([]string, error) {
	seen := map[string]bool{}
	var libs []string
	for _, p := range elfs {
		out, err := exec.CommandContext(ctx, "ldd", p).Output()
		if err != nil {
			continue // not dynamic ("not a dynamic executable")
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			lib := ""
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				lib = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				lib = f[0]
			}
			if lib != "" && !seen[lib] {
				seen[lib] = true
				libs = append(libs, lib)
			}
		}
	}
	if len(elfs) > 0 && len(libs) == 0 {
		return nil, errors.New("ldd found no library of the server's programs (is ldd installed?)")
	}
	slices.Sort(libs)
	return libs, nil
}

// rootTar writes an image's root filesystem, each path once, with the
// folders above each entry.
type rootTar struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	done map[string]bool
	err  error
	// dangling are the listed symlinks left out: they resolve nowhere.
	dangling []string
}

func newRootTar() *rootTar {
	r := &rootTar{done: map[string]bool{}}
	r.tw = tar.NewWriter(&r.buf)
	return r
}

func (r *rootTar) header(h *tar.Header, body []byte) {
	if r.err != nil || r.done[h.Name] {
		return
	}
	r.done[h.Name] = true
	if err := r.tw.WriteHeader(h); err != nil {
		r.err = err
		return
	}
	if len(body) > 0 {
		_, r.err = r.tw.Write(body)
	}
}

// parents adds the folders above name (root-owned, 0755) not yet written.
func (r *rootTar) parents(name string) {
	dir := filepath.Dir(name)
	if dir == "." || dir == "/" {
		return
	}
	r.parents(dir)
	r.header(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}, nil)
}

func (r *rootTar) addDir(name string, mode int64, uid int) {
	r.parents(name)
	r.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid}, nil)
}

func (r *rootTar) addFile(name string, mode int64, uid int, body []byte) {
	r.parents(name)
	r.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body))}, body)
}

// addHost adds host path p as it is on this machine: each symlink on the
// way (/lib -> usr/lib on a merged /usr) as a symlink, and what it points
// to, down to the file.
func (r *rootTar) addHost(p string) error {
	return r.addHostDepth(filepath.Clean(p), 0)
}

func (r *rootTar) addHostDepth(p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many symlinks", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		name := strings.TrimPrefix(cur, "/")
		last := i == len(parts)-1
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			r.parents(name)
			r.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
			abs := target
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(filepath.Dir(cur), target)
			}
			return r.addHostDepth(filepath.Join(append([]string{abs}, parts[i+1:]...)...), depth+1)
		case last && fi.Mode().IsRegular():
			if r.done[name] {
				return nil
			}
			body, err := os.ReadFile(cur)
			if err != nil {
				return err
			}
			r.addFile(name, int64(fi.Mode().Perm()), 0, body)
		case last && fi.IsDir():
			r.addDir(name, int64(fi.Mode().Perm()), 0)
		}
	}
	return r.err
}

// addListed adds host path p, which a package lists, and says whether
// it is a program or library (ELF) to follow with ldd. A folder comes
// with its files, and a path that is not there (a diverted or removed
// file) or a symlink that resolves nowhere (a link to a jar of a package
// only recommended, not installed) is left out: it is counted in
// r.dangling, not an error.
func (r *rootTar) addListed(p string) (elf bool, err error) {
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() {
		return false, nil
	}
	if _, err := os.Stat(p); err != nil {
		r.dangling = append(r.dangling, p)
		return false, nil
	}
	if err := r.addHost(p); err != nil {
		return false, err
	}
	return fi.Mode().IsRegular() && isELF(p), nil
}

// addTree adds host folder dir at name, every entry owned by uid.
func (r *rootTar) addTree(dir, name string, uid int) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		at := filepath.Join(name, rel)
		mode := int64(fi.Mode().Perm())
		switch {
		case fi.IsDir():
			r.addDir(at, mode, uid)
		case fi.Mode().IsRegular():
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r.addFile(at, mode, uid, body)
		}
		return r.err
	})
}

func (r *rootTar) close() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.tw.Close(); err != nil {
		return nil, err
	}
	return r.buf.Bytes(), nil
}
