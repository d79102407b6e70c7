package compact

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/middleware"
)

// maxConversations bounds the conversations a run keeps compaction state
// for (an agent, its sub-agents, side calls); the least recently used one
// is forgotten first.
const maxConversations = 16

type stateKey struct{ c *Compactor }

// runState is a compactor's state in one run.
type runState struct {
	used atomic.Bool // some conversation of the run has frozen blocks

	mu        sync.Mutex
	convs     []*conv // least recently used first
	offloaded map[offloadKey]string
}

type offloadKey struct{ callID, content string }

func newRunState() *runState { return &runState{offloaded: map[offloadKey]string{}} }

func (s *runState) empty() bool { return !s.used.Load() }

// conversation returns the state of the conversation that starts with
// head, creating it when create is set; nil otherwise.
func (s *runState) conversation(head []middleware.Message, create bool) *conv {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, cv := range s.convs {
		if middleware.EqualMessages(cv.head, head) {
			if i != len(s.convs)-1 {
				s.convs = append(slices.Delete(s.convs, i, i+1), cv)
			}
			return cv
		}
	}
	if !create {
		return nil
	}
	cv := &conv{head: cloneMessages(head), run: s}
	if len(s.convs) == maxConversations {
		s.convs = slices.Delete(s.convs, 0, 1)
	}
	s.convs = append(s.convs, cv)
	return cv
}

func (s *runState) excerpt(k offloadKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.offloaded[k]
	return e, ok
}

func (s *runState) setExcerpt(k offloadKey, e string) {
	s.mu.Lock()
	s.offloaded[k] = e
	s.mu.Unlock()
}

// conv is the compaction state of one conversation: its frozen blocks.
type conv struct {
	run  *runState
	head []middleware.Message

	mu     sync.Mutex
	blocks []*block
	failed map[summaryKey]error // summaries that could not be written
}

// block is a run of whole turns compacted together. Once formed it is
// frozen: later calls send exactly the same replacement (until a stronger
// strategy is needed for it).
type block struct {
	start, end int                  // message indexes in the conversation
	turns      int                  // number of turns it covers
	orig       []middleware.Message // the original messages, to recognise them
	level      int                  // index of the strategy applied
	repl       []middleware.Message // what is sent instead
	failed     error                // why the strategy of level left the block as it was

	tokModel         string // the model origTok and replTok were counted for
	tokForm          int    // the level they were counted at
	origTok, replTok int64
}

// covered returns the index of the first message after the frozen blocks.
func (cv *conv) covered(head int) int {
	if n := len(cv.blocks); n > 0 {
		return cv.blocks[n-1].end
	}
	return head
}

// layout splits a conversation into its head (leading system or developer
// messages and the first user message), its turns, and the protected tail (the last K
// turns and the latest user message).
type layout struct {
	n         int   // number of messages
	head      int   // messages [0, head) are the head
	starts    []int // first message of every turn after the head
	tailTurn  int   // first protected turn
	tailStart int   // its first message (n when there is none)
}

func layoutOf(msgs []middleware.Message, keep int) layout {
	l := layout{n: len(msgs)}
	for l.head < len(msgs) && instructions(msgs[l.head].Role) {
		l.head++
	}
	if l.head < len(msgs) && msgs[l.head].Role == middleware.RoleUser {
		l.head++
	}
	l.starts = make([]int, 0, len(msgs)-l.head)
	for i := l.head; i < len(msgs); {
		l.starts = append(l.starts, i)
		m := &msgs[i]
		i++
		if m.Role == middleware.RoleAssistant && len(m.ToolCalls) > 0 {
			for i < len(msgs) && msgs[i].Role == middleware.RoleTool && answers(m, msgs[i].ToolCallID) {
				i++
			}
		}
	}
	l.tailTurn = max(0, len(l.starts)-keep)
	for i := len(msgs) - 1; i >= l.head; i-- {
		if msgs[i].Role == middleware.RoleUser {
			l.tailTurn = min(l.tailTurn, l.turnAt(i))
			break
		}
	}
	l.tailStart = l.start(l.tailTurn)
	return l
}

// roleDeveloper is the role OpenAI's newer models take their instructions
// in (the chat completions API's system prompt for them).
const roleDeveloper middleware.Role = "developer"

// instructions reports whether a message of role r instructs the model: a
// system or developer message, kept as the system prompt is.
func instructions(r middleware.Role) bool { return r == middleware.RoleSystem || r == roleDeveloper }

func answers(m *middleware.Message, id string) bool {
	for i := range m.ToolCalls {
		if m.ToolCalls[i].ID == id {
			return true
		}
	}
	return false
}

// start returns the first message of turn t (n past the last turn).
func (l *layout) start(t int) int {
	if t >= len(l.starts) {
		return l.n
	}
	return l.starts[t]
}

// turnAt returns the turn holding message i.
func (l *layout) turnAt(i int) int {
	return sort.Search(len(l.starts), func(t int) bool { return l.starts[t] > i }) - 1
}

// boundary reports whether a turn starts at message i (or i is the end).
func (l *layout) boundary(i int) bool {
	if i == l.n {
		return true
	}
	_, ok := slices.BinarySearch(l.starts, i)
	return ok
}

func cloneMessages(ms []middleware.Message) []middleware.Message {
	out := make([]middleware.Message, len(ms))
	for i, m := range ms {
		out[i] = m.Clone()
	}
	return out
}
