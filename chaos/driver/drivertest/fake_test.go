package drivertest_test

import (
	"testing"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/drivertest"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestFake: driver.Fake passes the contract (names, states, toxics) it
// models; it runs nothing, so nothing is probed through STOMP.
func TestFake(t *testing.T) {
	drivertest.Run(t, drivertest.Setup{Database: scenario.Postgres,
		New: func(t *testing.T, cfg driver.Config) (driver.Driver, error) {
			return driver.NewFakeOf(cfg.Topology), nil
		}})
}
