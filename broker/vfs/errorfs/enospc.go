package errorfs

import (
	"sync"
	"syscall"
)

// ENOSPCAfter lets writes store limit bytes in all; the write that crosses
// the limit stores the part that fits and fails with ENOSPC, as do all
// later writes: a full disk.
func ENOSPCAfter(limit int64) Injector { return &enospc{left: limit} }

type enospc struct {
	mu   sync.Mutex
	left int64
}

func (e *enospc) Inject(op *Op) error {
	if op.Kind != OpWrite {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if int64(op.N) <= e.left {
		e.left -= int64(op.N)
		return nil
	}
	op.N = int(e.left)
	e.left = 0
	return syscall.ENOSPC
}
