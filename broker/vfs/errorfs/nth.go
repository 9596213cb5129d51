package errorfs

import "sync"

// OnNth fails the nth (1-based) operation of the given kinds (all kinds if
// none) with err, and only that one: a transient fault.
func OnNth(n int64, err error, kinds ...OpKind) Injector {
	return &nth{n: n, err: err, kinds: kinds}
}

// FromNth fails the nth operation of the given kinds and every later one:
// a disk that died.
func FromNth(n int64, err error, kinds ...OpKind) Injector {
	return &nth{n: n, err: err, kinds: kinds, sticky: true}
}

type nth struct {
	mu     sync.Mutex
	n      int64
	count  int64
	err    error
	kinds  []OpKind
	sticky bool
}

func matchKind(kinds []OpKind, k OpKind) bool {
	if len(kinds) == 0 {
		return true
	}
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

func (i *nth) Inject(op *Op) error {
	if !matchKind(i.kinds, op.Kind) {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.count++
	if i.count == i.n || i.sticky && i.count > i.n {
		if op.Kind == OpWrite {
			op.N = 0
		}
		return i.err
	}
	return nil
}
