package stomp

import (
	"os"
	"path/filepath"
	"testing"
)

// seeds are frames the fuzzer starts from besides testdata/fuzz/FuzzReadFrame.
func seeds() []string {
	return []string{
		"SEND\ndestination:/queue/a\n\nhello\x00",
		"SEND\r\ndestination:/queue/a\r\nreceipt:1\r\n\r\nhi\x00\r\n",
		"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:100,100\n\n\x00",
		"SEND\ncontent-length:3\n\na\x00b\x00",
		"SEND\nk\\cx:a\\nb\\rc\\\\d\n\n\x00",
		"\n\n\r\nACK\nid:1\n\n\x00\n",
		"SEND\nfoo:a\\tb\n\n\x00",
		"SEND\ndestination:/qu",
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range seeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, data)
	})
}

// TestCorpusPresent guards the committed seed corpus: go test runs every
// file in it as a FuzzReadFrame case, so losing it would go unnoticed.
func TestCorpusPresent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReadFrame", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("seed corpus has %d files, want at least 12", len(files))
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Fatalf("corpus file %s: %v", f, err)
		}
	}
}
