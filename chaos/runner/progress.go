package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress shows a run's state: a bar redrawn in place on a terminal,
// a plain line every few seconds otherwise. Log lines go above the bar.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	last     time.Time
	barShown bool
	context  string
}

// SetContext puts s before every status line, e.g. where a run of many
// stands ("cell 3/20 seed 2/3, ~12m left").
func (p *Progress) SetContext(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.context = s
}

// NewProgress writes to w; terminal selects the redrawn bar.
func NewProgress(w io.Writer, terminal bool) *Progress {
	if w == nil {
		w = io.Discard
	}
	return &Progress{w: w, terminal: terminal}
}

// Logf prints one line.
func (p *Progress) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.barShown {
		fmt.Fprint(p.w, "\r\033[K")
		p.barShown = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Update shows the state: frac of the run done (0..1), and a status text.
func (p *Progress) Update(name string, frac float64, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	frac = min(max(frac, 0), 1)
	if p.context != "" {
		name = "[" + p.context + "] " + name
	}
	if p.terminal {
		const width = 24
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3.0f%% %s", name, strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, status)
		p.barShown = true
		return
	}
	if time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "%s: %3.0f%% %s\n", name, frac*100, status)
}

// Done clears the bar.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.barShown {
		fmt.Fprint(p.w, "\r\033[K")
		p.barShown = false
	}
	p.last = time.Time{}
}
