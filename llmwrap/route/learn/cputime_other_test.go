//go:build !linux

package learn_test

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
