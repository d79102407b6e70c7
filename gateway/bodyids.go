package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// The ids a request's body names (objects_owner.go keeps an object to the
// team that created it by path; this, by body): a file given to a vector
// store, a batch's input file, a fine-tuning job's training file, a
// Responses call's vector stores or input file, a chat message's file
// part, an assistant's or a thread's tool resources, a message's
// attachments, a run's assistant, a code interpreter's container — and a
// fine-tuned model (ft:…) a team's job made, named as a call's model.
// Another team's is refused with the 404 its family's path gives, before
// the upstream is asked.

// fineTunedModels is the family of the fine-tuned models the gateway saw a
// team's fine-tuning job make (its fine_tuned_model, a checkpoint's
// fine_tuned_model_checkpoint): named as a call's model, or by path
// (/v1/models/ft:…), another team's is OpenAI's unknown model.
var fineTunedModels = &ownedFamily{path: "/models", code: "model_not_found",
	notFound: quoted("The model `%s` does not exist or you do not have access to it.")}

// familyOf returns the owned family of path (its path after /v1).
func familyOf(path string) *ownedFamily {
	for _, f := range ownedFamilies {
		if f.path == path {
			return f
		}
	}
	panic("tokenwise/gateway: no owned family " + path)
}

// bodyMembers are the members that name an owned object by id, wherever
// they are in a request's body (a string, or an array of strings).
var bodyMembers = map[string]*ownedFamily{
	"file_id":          familyOf("/files"),
	"file_ids":         familyOf("/files"),
	"input_file_id":    familyOf("/files"),
	"training_file":    familyOf("/files"),
	"validation_file":  familyOf("/files"),
	"vector_store_id":  familyOf("/vector_stores"),
	"vector_store_ids": familyOf("/vector_stores"),
	"assistant_id":     familyOf("/assistants"),
	"container":        familyOf("/containers"),
}

// bodyRef is an id a request's body names, of family fam.
type bodyRef struct {
	fam *ownedFamily
	id  string
}

// maxBodyDepth bounds the nesting of a body read for the ids it names
// (deeper is not read: the upstream's own parsers stop far sooner).
const maxBodyDepth = 10000

// errBodyDepth ends the read of a body nested deeper than maxBodyDepth.
var errBodyDepth = errors.New("the JSON is nested too deep")

// mayNameIDs reports whether body may name an owned object's id: a member
// of bodyMembers (its name's end and closing quote: file_id" is also
// input_file_id's and an eval source's type) or an ft: model (a string
// that opens with it), written as it is or with an ASCII letter escaped
// (\u00XX). A body that cannot is not decoded. The quotes matter: a chat
// message's text ("left: the container") does not make the body decoded
// token by token, which costs a 50-message conversation tens of µs.
func mayNameIDs(body []byte) bool { return mayName(body, true) }

// mayName is mayNameIDs; models false leaves out the ft: models (a chat
// call's, read from its decoded model by chatRefs: an ft: model there
// would otherwise make every call of a fine-tuned model decode its whole
// body token by token, for an id already known).
func mayName(body []byte, models bool) bool {
	// One pass over the quotes (a scan per word cost a 25 KB chat call
	// ~100 µs): what precedes a quote may end a member's name, what
	// follows it may open an ft: model.
	for i := 0; ; i++ {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			break
		}
		i += j
		if models && bytes.HasPrefix(body[i+1:], []byte("ft:")) {
			return true
		}
		before := body[:i]
		for _, w := range [...]string{"file_id", "file_ids", "training_file", "validation_file", "vector_store_id", "vector_store_ids", "assistant_id", `"container`} {
			if len(before) > 0 && before[len(before)-1] == w[len(w)-1] && bytes.HasSuffix(before, []byte(w)) {
				return true
			}
		}
	}
	lo := byte('4')
	if models {
		lo = '3'
	}
	for b := body; ; {
		i := bytes.Index(b, []byte(`\u00`))
		if i < 0 || i+5 >= len(b) {
			return false
		}
		// A letter or '_' of a member's name is \u004X–\u007X; an ft:
		// model's ':' is \u003a. Go's encoders write <, > and & as
		// \u003c, \u003e and \u0026, which name nothing.
		if c := b[i+4]; c >= lo && c <= '7' {
			return true
		}
		b = b[i+4:]
	}
}

// bodyIDs returns the owned objects' ids JSON body names: every member of
// bodyMembers at any depth (but in metadata, which names nothing), each
// of its values when it is given twice, its name's escapes read; an eval
// run's file source ({"type": "file_id", "id": …}); and the ft: models
// the body's top-level model members name. err: the body is not JSON (the
// ids read before its fault are returned).
func bodyIDs(body []byte) (refs []bodyRef, err error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	s := &idScan{d: d}
	if _, _, err := s.value(nil, true, 0); err != nil {
		return s.refs, err
	}
	if _, err := d.Token(); err != io.EOF {
		return s.refs, errors.New("more than one JSON value")
	}
	return s.refs, nil
}

type idScan struct {
	d    *json.Decoder
	refs []bodyRef
	// add, when set, gets each id read (refs then holds none).
	add func(bodyRef)
}

func (s *idScan) addRef(r bodyRef) {
	if s.add != nil {
		s.add(r)
		return
	}
	s.refs = append(s.refs, r)
}

// value reads the next value; its strings are ids of fam (nil: none). It
// returns the value's string when it is one.
func (s *idScan) value(fam *ownedFamily, top bool, depth int) (string, bool, error) {
	if depth > maxBodyDepth {
		return "", false, errBodyDepth
	}
	t, err := s.d.Token()
	if err != nil {
		return "", false, err
	}
	switch v := t.(type) {
	case string:
		if fam != nil && v != "" {
			s.addRef(bodyRef{fam, v})
		}
		return v, true, nil
	case json.Delim:
		if v == '{' {
			return "", false, s.object(top, depth+1)
		}
		if v != '[' {
			return "", false, fmt.Errorf("unexpected %v", v)
		}
		for s.d.More() {
			if _, _, err := s.value(fam, false, depth+1); err != nil {
				return "", false, err
			}
		}
		_, err := s.d.Token() // ]
		return "", false, err
	}
	return "", false, nil
}

func (s *idScan) object(top bool, depth int) error {
	var types, ids []string // an eval run's source: {"type": "file_id", "id": …}
	for s.d.More() {
		t, err := s.d.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		fam := bodyMembers[name]
		switch {
		case name == "metadata":
			var skip json.RawMessage
			if err := s.d.Decode(&skip); err != nil {
				return err
			}
			continue
		case top && name == "model":
			v, ok, err := s.value(nil, false, depth)
			if err != nil {
				return err
			}
			if ok && strings.HasPrefix(v, "ft:") {
				s.addRef(bodyRef{fineTunedModels, v})
			}
			continue
		}
		v, ok, err := s.value(fam, false, depth)
		if err != nil {
			return err
		}
		switch {
		case ok && name == "type":
			types = append(types, v)
		case ok && name == "id":
			ids = append(ids, v)
		}
	}
	if _, err := s.d.Token(); err != nil { // }
		return err
	}
	if slices.Contains(types, "file_id") {
		for _, id := range ids {
			if id != "" {
				s.addRef(bodyRef{familyOf("/files"), id})
			}
		}
	}
	return nil
}

// othersOwn returns the index of the first of refs that another team
// created and team did not (-1: none), as checkObject judges one.
func (o *responseOwners) othersOwn(ctx context.Context, team string, refs []bodyRef) (int, error) {
	local := make([][]string, len(refs))
	var ask []int // the refs this replica does not know as team's
	o.mu.Lock()
	for i, r := range refs {
		if e := o.teams[r.id]; e != nil && o.live(e) {
			if slices.Contains(e.teams, team) {
				continue
			}
			local[i] = slices.Clone(e.teams)
		}
		ask = append(ask, i)
	}
	o.mu.Unlock()
	if o.rdb == nil || len(ask) == 0 {
		for _, i := range ask {
			if len(local[i]) > 0 {
				return i, nil
			}
		}
		return -1, nil
	}
	ctx, cancel := context.WithTimeout(ctx, responseOwnerTimeout)
	defer cancel()
	cmds := make([]*goredis.StringSliceCmd, len(ask))
	_, err := o.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, i := range ask {
			cmds[j] = p.SMembers(ctx, o.key+refs[i].id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		for _, i := range ask {
			if len(local[i]) > 0 {
				return i, nil // another team's, as this replica saw
			}
		}
		return -1, err
	}
	for j, i := range ask {
		shared := cmds[j].Val()
		if !slices.Contains(shared, team) && (len(local[i]) > 0 || len(shared) > 0) {
			return i, nil
		}
	}
	return -1, nil
}

// checkBodyIDs refuses (the error to write) team's request whose JSON body
// names another team's object (bodyIDs); nil when it names none. A body
// that is not JSON is refused when strict and it is meant as JSON
// (bodyJSON), else checked as far as it reads.
func (s *Server) checkBodyIDs(ctx context.Context, team string, body []byte, strict bool) *apiError {
	strict = strict && bodyJSON(body)
	if !mayNameIDs(body) {
		return nil
	}
	refs, err := bodyIDs(body)
	if err != nil && strict {
		return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_json", NoRetry: true,
			Message: "tokenwise/gateway: the request's body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if e := s.refuseRefs(ctx, team, refs); e != nil {
		return e
	}
	return nil
}

// chatRefs returns the owned objects' ids a chat call names: its model
// when it is a fine-tuned one (as the go-openai transport decoded it, its
// escapes read), and the ids its wire JSON names at any depth, as
// checkBodyIDs reads a body. The wire JSON is what the upstream gets of
// every message the chain leaves unchanged, members the core drops
// included (a text part's stray "file", a message's own "file_id"), so it
// is read whole, not only the parts and top-level members the core does
// not model; the prefilter (mayNameIDs: the members' names with their
// closing quote) keeps prose from being decoded. Without a wire JSON (a
// request not decoded by the transport), the ids in the content parts and
// top-level members the core does not model are read.
func chatRefs(req *middleware.Request) []bodyRef {
	var refs []bodyRef
	if strings.HasPrefix(req.Model, "ft:") {
		refs = append(refs, bodyRef{fineTunedModels, req.Model})
	}
	if w, ok := req.Native.(*twopenai.Wire); ok && len(w.JSON) > 0 {
		if mayName(w.JSON, false) {
			r, _ := bodyIDs(w.JSON)
			refs = append(refs, r...)
		}
		return refs
	}
	read := func(raw []byte) {
		if len(raw) > 0 && mayNameIDs(raw) {
			r, _ := bodyIDs(raw)
			refs = append(refs, r...)
		}
	}
	read(req.Extra)
	for i := range req.Messages {
		for j := range req.Messages[i].Parts {
			if p := &req.Messages[i].Parts[j]; p.MIMEType == twopenai.PartMIMEType {
				read(p.Data)
			}
		}
	}
	return refs
}

// refuseRefs refuses (the error to write) team's request naming refs when
// one of them is another team's object; nil when none is.
func (s *Server) refuseRefs(ctx context.Context, team string, refs []bodyRef) *apiError {
	refs = distinctRefs(refs)
	if len(refs) == 0 {
		return nil
	}
	if len(refs) > maxBodyRefs {
		return errTooManyRefs
	}
	i, err := s.objects.othersOwn(ctx, team, refs)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: the teams that created the objects a body names could not be read from Redis: refused", "team", team, "error", err)
		return errObjectOwnerStore
	}
	if i < 0 {
		return nil
	}
	s.logger.Warn("tokenwise/gateway: refused another team's object named in a body", "team", team, "object_id", refs[i].id)
	return refs[i].fam.refusal(refs[i].id)
}

// maxBodyRefs bounds the distinct ids one request's body may name (each
// one a Redis command of the check's one pipeline): OpenAI's bodies name
// far fewer.
const maxBodyRefs = 10000

var errTooManyRefs = &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "too_many_ids", NoRetry: true,
	Message: fmt.Sprintf("tokenwise/gateway: the request's body names more than %d distinct object ids (files, vector stores, models…)", maxBodyRefs)}

// distinctRefs returns refs without an id named again (the first of
// each kept, in order): a body naming one id 100,000 times is one check.
func distinctRefs(refs []bodyRef) []bodyRef {
	if len(refs) < 2 {
		return refs
	}
	seen := make(map[string]bool, len(refs))
	out := refs[:0:0]
	for _, r := range refs {
		if !seen[r.id] {
			seen[r.id] = true
			out = append(out, r)
		}
	}
	return out
}

// refusal is the 404 of f's object id that the team may not use.
func (f *ownedFamily) refusal(id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: f.code, Message: f.notFound(id)}
}

// readsBodyIDs reports whether r is a passed-through request whose body
// is read for the ids it names before it is sent: a POST to an owned
// family's path, a legacy completion (its model) or a Responses
// endpoint that takes a call's input (responsesInput), but a multipart
// form (a file's upload), streamed to the upstream as it comes.
func readsBodyIDs(r *http.Request, owned bool) bool {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	if !owned && strings.TrimSuffix(r.URL.Path, "/") != "/v1/completions" && !responsesInput(r) {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return !strings.HasPrefix(mt, "multipart/")
}

// responsesInput reports whether r is a POST to an endpoint of the
// Responses API, other than POST /v1/responses, that takes a call's input
// (its model, input, tools, conversation, previous_response_id): a count
// of its input tokens or a compaction.
func responsesInput(r *http.Request) bool {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/v1/responses/input_tokens", "/v1/responses/compact":
		return r.Method == http.MethodPost
	}
	return false
}

// bodyJSON reports whether body is meant as JSON: its first byte but
// white space opens an object or an array.
func bodyJSON(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}
