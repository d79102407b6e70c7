//go:build !unix

package gateway

// procCPUSelf is 0 where the process's CPU time is not read.
func procCPUSelf() int64 { return 0 }
