package dbserver

// SetFreePort replaces how servers started without WithPort pick their
// port, until the returned function restores it.
func SetFreePort(f func(ip string) (int, error)) (restore func()) {
	old := freePort
	freePort = f
	return func() { freePort = old }
}
