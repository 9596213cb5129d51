package admin

import (
	"crypto/subtle"
	"net/http"
)

// RequireToken guards h with a bearer token (refbroker --admin-token):
// every request but GET /healthz must carry "Authorization: Bearer
// <token>", or gets 401. /healthz stays open so that a liveness probe
// needs no secret; it tells only that the process runs. /readyz is
// guarded: its 503 body names store errors and lease holders.
func RequireToken(h http.Handler, token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="refbroker admin"`)
			http.Error(w, "unauthorized: this endpoint needs the header Authorization: Bearer <--admin-token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
