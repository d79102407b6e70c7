package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
)

// A passed-through body that is not read whole (bodyids.go's
// readsBodyIDs) — a multipart form (a file's upload, a container file
// named by file_id, an image edit, an audio file), or a JSON body of an
// endpoint of no owned family (a JSON image edit's images: [{file_id}])
// — is read for the ids it names as it is streamed to the upstream
// (bodyGuard): a form's fields by their names (file_id, images[0][file_id],
// file_ids[]: the name's last key, as bodyMembers), its file parts passed
// through unread; a form's model and a JSON body's top-level model for an
// ft: model. A body up to limits.max_body is read whole before anything is
// sent, so another team's id is refused before the upstream is asked; a
// longer one is streamed, its last guardHold bytes held back until every
// id before them is checked: a body naming another team's id never
// reaches the upstream whole (the request is cut, the client answered the
// id's 404).

// guardHold is how many of a streamed body's last bytes read are held
// back: more than its parser reads ahead of what it has judged (a
// multipart reader's 4 KiB buffer, a JSON decoder's one read of
// guardChunk beyond the token it reads).
const guardHold = 64 << 10

// guardChunk bounds one read of a streamed body by its parser.
const guardChunk = 4 << 10

// maxFormID bounds a form field's value read as an id: no id is longer.
const maxFormID = 64 << 10

// guardRefusal is the error a guarded body's read ends with when the
// request is refused (another team's id, a body that cannot be read):
// its answer.
type guardRefusal struct{ e *apiError }

func (g *guardRefusal) Error() string { return g.e.Message }

var errGuardClosed = errors.New("tokenwise/gateway: the request's body was closed")

// bodyGuard is a request's body, read for the ids it names (parse, in a
// coroutine) as it is read: what the parser has read is given to the
// reader but its last guardHold bytes, once every id read so far is
// checked (check); the rest when the parser has read the body to its end
// and every id it names is checked.
type bodyGuard struct {
	mu      sync.Mutex
	src     io.ReadCloser
	next    func() (struct{}, bool)
	stop    func()
	pending bytes.Buffer
	refs    []bodyRef
	checked int
	seen    map[string]bool
	check   func([]bodyRef) *apiError
	// malformed is the refusal of a body its parser cannot read.
	malformed func(error) *apiError
	done      bool
	closed    bool
	parseErr  error
	srcErr    error
	err       error
}

// guardFeed is the parser's reader of the body: before each read it
// yields, so that the ids read so far are checked and what was read is
// given on.
type guardFeed struct {
	g     *bodyGuard
	yield func(struct{}) bool
}

func (f *guardFeed) Read(p []byte) (int, error) {
	if !f.yield(struct{}{}) {
		return 0, errGuardClosed
	}
	if len(p) > guardChunk {
		p = p[:guardChunk]
	}
	n, err := f.g.src.Read(p)
	f.g.pending.Write(p[:n])
	if err != nil && err != io.EOF {
		f.g.srcErr = err
	}
	return n, err
}

// newBodyGuard returns the guard of src, read by parse (which adds the
// ids it reads with add and reads src to its end).
func newBodyGuard(src io.ReadCloser, check func([]bodyRef) *apiError, malformed func(error) *apiError,
	parse func(r io.Reader, add func(bodyRef)) error) *bodyGuard {
	g := &bodyGuard{src: src, check: check, malformed: malformed, seen: map[string]bool{}}
	g.next, g.stop = iter.Pull(func(yield func(struct{}) bool) {
		g.parseErr = parse(&guardFeed{g: g, yield: yield}, func(r bodyRef) { g.refs = append(g.refs, r) })
	})
	return g
}

// advance runs the parser to its next read (or its end) and checks the
// ids it read.
func (g *bodyGuard) advance() {
	_, more := g.next()
	var fresh []bodyRef
	for _, r := range g.refs[g.checked:] {
		if !g.seen[r.id] {
			g.seen[r.id] = true
			fresh = append(fresh, r)
		}
	}
	g.checked = len(g.refs)
	if len(g.seen) > maxBodyRefs {
		g.err = &guardRefusal{errTooManyRefs}
		return
	}
	if len(fresh) > 0 {
		if e := g.check(fresh); e != nil {
			g.err = &guardRefusal{e}
			return
		}
	}
	if !more {
		g.done = true
		g.stop()
		switch {
		case g.srcErr != nil:
			g.err = g.srcErr
		case g.parseErr != nil:
			g.err = &guardRefusal{g.malformed(g.parseErr)}
		}
	}
}

// prime reads the body until the parser is done or limit bytes are read
// and held: an error is the request's refusal (or the body's read's
// failure).
func (g *bodyGuard) prime(limit int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.err == nil && !g.done && g.pending.Len() < limit {
		g.advance()
	}
	return g.err
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch {
		case g.err != nil:
			return 0, g.err
		case g.done && g.pending.Len() == 0:
			return 0, io.EOF // (the parser read the body to its end)
		case g.done:
			return g.pending.Read(p)
		case g.pending.Len() > guardHold:
			return g.pending.Read(p[:min(len(p), g.pending.Len()-guardHold)])
		case g.closed:
			return 0, errGuardClosed
		}
		g.advance()
	}
}

// Close closes the body and ends its parser.
func (g *bodyGuard) Close() error {
	err := g.src.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.stop()
	}
	return err
}

// guardBody returns the guard of r's body when it is one bodyGuard reads
// (a multipart form; a JSON body of an endpoint no owned family's, which
// readsBodyIDs does not read), its ids checked as team's request's; nil
// for any other.
func (s *Server) guardBody(ctx context.Context, r *http.Request, team string) *bodyGuard {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	check := func(refs []bodyRef) *apiError { return s.refuseRefs(ctx, team, refs) }
	switch {
	case err == nil && mt == "multipart/form-data":
		boundary := params["boundary"]
		return newBodyGuard(r.Body, check, func(err error) *apiError {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_form", NoRetry: true,
				Message: "tokenwise/gateway: the request's multipart form cannot be read: " + err.Error()}
		}, func(r io.Reader, add func(bodyRef)) error { return formIDs(r, boundary, add) })
	case err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")):
		return newBodyGuard(r.Body, check, func(err error) *apiError {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_json", NoRetry: true,
				Message: "tokenwise/gateway: the request's body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
		}, jsonIDs)
	}
	return nil
}

// jsonIDs reads the JSON body r to its end for the ids it names, as
// bodyIDs does.
func jsonIDs(r io.Reader, add func(bodyRef)) error {
	d := json.NewDecoder(r)
	d.UseNumber()
	s := &idScan{d: d, add: add}
	if _, _, err := s.value(nil, true, 0); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		return err
	}
	return nil
}

var errFormIDTooLong = errors.New("a field naming an object's id is over 64 KiB")

// formIDs reads the multipart form r (of boundary) to its end for the ids
// its fields name: a field whose name's last key (file_id,
// images[0][file_id], file_ids[]) is a member of bodyMembers, and a
// model field naming an ft: model; but under metadata. File parts are
// read through, unkept.
func formIDs(r io.Reader, boundary string, add func(bodyRef)) error {
	if boundary == "" {
		return errors.New("no boundary")
	}
	mr := multipart.NewReader(r, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		key, meta := formKey(p.FormName())
		fam := bodyMembers[key]
		model := p.FormName() == "model"
		if p.FileName() == "" && !meta && (fam != nil || model) {
			b, err := io.ReadAll(io.LimitReader(p, maxFormID+1))
			if err != nil {
				return err
			}
			if len(b) > maxFormID {
				return errFormIDTooLong
			}
			v := strings.TrimSpace(string(b))
			switch {
			case fam != nil && v != "":
				add(bodyRef{fam, v})
			case model && strings.HasPrefix(v, "ft:"):
				add(bodyRef{fineTunedModels, v})
			}
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return err
		}
	}
	_, err := io.Copy(io.Discard, r) // (the epilogue)
	return err
}

// formKey returns the last key of a form field's name (images[0][file_id]
// and images.0.file_id: file_id; file_ids[]: file_ids), and whether the
// name is under metadata.
func formKey(name string) (key string, meta bool) {
	parts := strings.FieldsFunc(name, func(c rune) bool { return c == '[' || c == ']' || c == '.' })
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.Trim(parts[i], "0123456789") != "" && key == "" {
			key = parts[i]
		}
		if parts[i] == "metadata" {
			meta = true
		}
	}
	return key, meta
}
