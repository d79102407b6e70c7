package policies

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileSize is the largest policy file (or Load input) tokenwise reads:
// 1 MiB, a hundred times the largest real policy. A larger file is refused
// before it is read (ErrTooLarge).
const MaxFileSize = 1 << 20

// ErrNotRegularFile matches a team file or extends target that is a FIFO,
// a device, a socket or a directory, and a policy directory that is not a
// directory. It is refused before it is read, so a FIFO named devops.yaml
// never blocks a load.
var ErrNotRegularFile = errors.New("tokenwise/policies: not a regular file")

// ErrTooLarge matches a policy file larger than MaxFileSize or with more
// entries than a policy can hold (see the package documentation, Limits).
var ErrTooLarge = errors.New("tokenwise/policies: policy file too large")

// ErrTooDeep matches a policy file nested deeper than a policy can be.
var ErrTooDeep = errors.New("tokenwise/policies: policy file nested too deep")

// ErrNotPolicy matches a file that cannot be a policy: an extends target
// whose name does not end in .yaml, .yml or .json, or a document whose top
// level is not a mapping. Its contents are never quoted in the message.
var ErrNotPolicy = errors.New("tokenwise/policies: not a policy file")

// readPolicyFile reads the regular file at path, at most MaxFileSize
// bytes (see openRegular).
func readPolicyFile(path string) ([]byte, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, tooLarge(path)
	}
	return b, nil
}

// openRegular opens the regular file at path. Anything else (FIFO,
// device, socket, directory) is refused after a stat, before it is
// opened; the file is then opened without blocking (O_NONBLOCK where the
// system has it) and checked again on the open descriptor, so a file
// swapped between the two checks is refused too.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err == nil {
		err = checkRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func checkRegular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%w: %s is %s", ErrNotRegularFile, path, kind)
}

func tooLarge(path string) error {
	return fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, path, MaxFileSize)
}
