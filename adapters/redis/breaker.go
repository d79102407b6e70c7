package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// BreakerStore is gobreaker's SharedDataStore on Redis: the state of every
// model's circuit breaker (llmwrap/breaker with WithSharedStore, which
// llmwrap.WithBreakerStore sets) is one Redis string, so that a breaker
// opened by one replica is open in all of them. Lock is a lease (SET NX PX
// with a random token, released by a compare-and-delete script), so that a
// replica that dies holding it blocks the others for LockTTL at most.
//
// Keys: "<prefix>:breaker:<name>", where name is gobreaker's
// ("gobreaker:state:<model>", "gobreaker:mutex:<model>"). State keys expire
// after StateTTL without a write.
//
// A BreakerStore is safe for concurrent use.
type BreakerStore struct {
	c      goredis.UniversalClient
	prefix string
	tokens sync.Map // name → token of the lock this process holds
}

var _ gobreaker.SharedDataStore = (*BreakerStore)(nil)

const (
	// LockTTL is how long a breaker lock lives if its holder never releases it.
	LockTTL = 5 * time.Second
	// StateTTL is how long a breaker's state lives without a write.
	StateTTL = 24 * time.Hour
	// lockWait is how long Lock waits for a lock held by another replica
	// before it gives up (the critical sections are a few round trips).
	lockWait = 250 * time.Millisecond
	// opTimeout bounds each Redis command.
	opTimeout = 2 * time.Second
)

// ErrLockBusy is returned by Lock when another replica held the lock for
// longer than Lock waits.
var ErrLockBusy = errors.New("tokenwise/redis: breaker lock busy")

// NewBreakerStore returns a BreakerStore on c whose keys start with prefix
// ("tokenwise" when empty). The caller owns c.
func NewBreakerStore(c goredis.UniversalClient, prefix string) *BreakerStore {
	if prefix == "" {
		prefix = "tokenwise"
	}
	return &BreakerStore{c: c, prefix: prefix}
}

func (s *BreakerStore) key(name string) string { return s.prefix + ":breaker:" + name }

var unlockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lock takes the lock name, waiting a little while another replica holds it.
func (s *BreakerStore) Lock(name string) error {
	var b [12]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	deadline := time.Now().Add(lockWait)
	for wait := 200 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		ok, err := s.c.SetNX(ctx, s.key(name), tok, LockTTL).Result()
		cancel()
		if err != nil {
			return fmt.Errorf("tokenwise/redis: breaker lock: %w", err)
		}
		if ok {
			s.tokens.Store(name, tok)
			return nil
		}
		if time.Now().After(deadline) {
			return ErrLockBusy
		}
		time.Sleep(wait)
	}
}

// Unlock releases the lock name if this process holds it.
func (s *BreakerStore) Unlock(name string) error {
	tok, ok := s.tokens.LoadAndDelete(name)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := unlockScript.Run(ctx, s.c, []string{s.key(name)}, tok).Err(); err != nil {
		return fmt.Errorf("tokenwise/redis: breaker unlock: %w", err)
	}
	return nil
}

// GetData returns the state stored under name, nil when there is none.
func (s *BreakerStore) GetData(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := s.c.Get(ctx, s.key(name)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenwise/redis: breaker state: %w", err)
	}
	return b, nil
}

// SetData stores the state under name.
func (s *BreakerStore) SetData(name string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.c.Set(ctx, s.key(name), data, StateTTL).Err(); err != nil {
		return fmt.Errorf("tokenwise/redis: breaker state: %w", err)
	}
	return nil
}
