//go:build !unix

package policies

// openNonBlock is zero where the system has no O_NONBLOCK; the stat before
// the open refuses FIFOs there.
const openNonBlock = 0
