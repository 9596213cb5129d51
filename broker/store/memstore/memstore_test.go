package memstore_test

import (
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
	"github.com/lossbench/lossbench/broker/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Open: func(t *testing.T) store.Store { return memstore.New() }}
	})
}
