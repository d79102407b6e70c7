package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
)

// WeightsFile returns the path of p's routing.learned weights file: a
// relative path is resolved against the directory of the policy file that
// set it (as the loader recorded it), or left as is for a policy built in
// code.
func (p *Policy) WeightsFile() string {
	w := p.Routing.Learned.Weights
	if w == "" || filepath.IsAbs(w) {
		return w
	}
	for _, o := range p.Explain() {
		if o.Path == "routing.learned.weights" && o.File != "" {
			return filepath.Join(filepath.Dir(o.File), w)
		}
	}
	return w
}

// WeightsDigest returns the SHA-256 (hex) of p's learned weights file as
// the directory loader ([LoadDir], [Registry]) read it: "" when p has no
// learned routing, was not loaded from a directory, or the file could not
// be read (building the policy's router then says why). The weights are
// part of the policy: a retrained file, its policy file unchanged, makes a
// [Registry] reload report the team updated, and the chains built on it
// route with the new weights.
func (p *Policy) WeightsDigest() string { return p.weights }

// noteWeights records the digest of p's weights file (see WeightsDigest).
func noteWeights(p *Policy) {
	if f := p.WeightsFile(); f != "" {
		p.weights = fileDigest(f)
	}
}

// fileDigest returns the hex SHA-256 of the regular file at path, of
// any size, or "" when it cannot be read (a FIFO is not opened: see
// openRegular).
func fileDigest(path string) string {
	f, _, err := openRegular(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
