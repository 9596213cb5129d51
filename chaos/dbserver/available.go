package dbserver

// Available reports whether the binaries for kind are installed; the error
// says how to install them (a test skips with it).
func Available(kind Kind) error {
	switch kind {
	case Postgres:
		_, err := postgresBinDir("")
		return err
	case MariaDB:
		_, _, err := mariaBins("")
		return err
	}
	return ErrNotInstalled
}
