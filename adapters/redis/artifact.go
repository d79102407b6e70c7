package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/toolwrap"
)

// ArtifactStore is a [toolwrap.Store] in Redis, so that every replica of an
// agent can read the artifacts of a run, whichever replica stored them.
// Each artifact is one string key, "<prefix>:artifact:<run hash>:<id>",
// with a TTL: the run id is hashed (SHA-256), so an artifact is found only
// under the run that produced it, and ids that are not toolwrap ids are
// refused before they reach a key. It is safe for concurrent use.
type ArtifactStore struct {
	client goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

var _ toolwrap.Store = (*ArtifactStore)(nil)

// NewArtifactStore returns an artifact store on client. prefix namespaces
// the keys (empty: "tokenwise"); ttl expires artifacts (zero: 24h). The
// caller owns the client.
func NewArtifactStore(client goredis.UniversalClient, prefix string, ttl time.Duration) *ArtifactStore {
	if prefix == "" {
		prefix = "tokenwise"
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &ArtifactStore{client: client, prefix: prefix + ":artifact:", ttl: ttl}
}

// Key returns the Redis key of an artifact.
func (s *ArtifactStore) Key(run, id string) string {
	h := sha256.Sum256([]byte(run))
	return s.prefix + hex.EncodeToString(h[:16]) + ":" + id
}

// Put stores t under run and id with the store's TTL.
func (s *ArtifactStore) Put(ctx context.Context, run, id string, t *toolwrap.Text) error {
	if !toolwrap.ValidID(id) {
		return errors.New("tokenwise/redis: invalid artifact id")
	}
	return s.client.Set(ctx, s.Key(run, id), t.Bytes(), s.ttl).Err()
}

// Get returns the artifact of run and id, or toolwrap.ErrNotFound.
func (s *ArtifactStore) Get(ctx context.Context, run, id string) (*toolwrap.Text, error) {
	if !toolwrap.ValidID(id) {
		return nil, toolwrap.ErrNotFound
	}
	b, err := s.client.Get(ctx, s.Key(run, id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, toolwrap.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return toolwrap.NewText(b), nil
}
