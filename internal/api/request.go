package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/ingest"
)

// FieldError names one bad field of a request and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// fieldErrors collects every bad field of a request, so a client fixes them all in one round.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	*fe = append(*fe, FieldError{Field: field, Message: msg})
}

// MaxBodyBytes bounds every JSON request body of the API.
const MaxBodyBytes = 1 << 20

// decodeBody reads a JSON object into dst (a pointer to a struct with json tags). Fields the struct
// does not have — server-owned ones like tenant_id or id included — are refused by name, all of them.
// It writes the problem and returns false when the body is not acceptable.
func decodeBody(c *gin.Context, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(c, http.StatusRequestEntityTooLarge, "request body too large",
				"the body exceeds "+strconv.Itoa(MaxBodyBytes)+" bytes")
			return false
		}
		writeProblem(c, http.StatusBadRequest, "unreadable request body", "")
		return false
	}
	if !storableJSON(c, body, true) {
		return false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		writeProblem(c, http.StatusBadRequest, "malformed JSON", "the body must be a JSON object: "+jsonErrorText(err))
		return false
	}
	allowed := jsonFields(dst)
	var errs fieldErrors
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			errs.add(k, "unknown or server-owned field; remove it")
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			errs.add(typeErr.Field, "must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
			writeValidation(c, errs)
			return false
		}
		writeProblem(c, http.StatusBadRequest, "malformed JSON", jsonErrorText(err))
		return false
	}
	return true
}

// storableJSON refuses a JSON body with a string PostgreSQL cannot store as text — bytes that are not
// UTF-8, which encoding/json would silently turn into U+FFFD, or with nul a \u0000 escape — with a 400
// naming the string's field. It writes the problem and returns false when the body is refused.
func storableJSON(c *gin.Context, body []byte, nul bool) bool {
	field, problem, found := jsonTextProblem(body, nul)
	if found {
		writeValidation(c, fieldErrors{{Field: field, Message: problem}})
	}
	return !found
}

// jsonTextProblem finds the first string of a JSON document that is not UTF-8 or, with nul, holds a NUL
// character, and names it by its path: labels.env, metrics[0].name; a bad key names the object it is
// in (at the top, the key itself, quoted). It finds nothing in a document that is not JSON: the decoder
// reports that one.
func jsonTextProblem(body []byte, nul bool) (field, problem string, found bool) {
	if utf8.Valid(body) && (!nul || !bytes.Contains(body, []byte(`\u0000`))) {
		return "", "", false // every document but a few, at the cost of one pass
	}
	// Where the walk is: an object with the key of its current value, or an array with its current index.
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []frame
	path := func(withTop bool) string {
		var b strings.Builder
		for i, f := range stack {
			if i == len(stack)-1 && !withTop {
				break
			}
			switch {
			case f.array:
				fmt.Fprintf(&b, "[%d]", f.index)
			case b.Len() > 0:
				b.WriteString("." + f.key)
			default:
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	// consumed moves the innermost container past the value just read.
	consumed := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{array: t == '[', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				consumed()
			}
		case string:
			why := ""
			switch {
			case !utf8.Valid(body[start:dec.InputOffset()]):
				why = "is not valid UTF-8" // t holds U+FFFD instead
			case nul:
				why = ingest.CheckText(t)
			}
			top := len(stack) - 1
			if top >= 0 && !stack[top].array && stack[top].wantKey {
				if why != "" {
					if top == 0 {
						return strconv.Quote(t), "this key " + why, true
					}
					return path(false), "a key " + why, true
				}
				stack[top].key, stack[top].wantKey = t, false
				continue
			}
			if why != "" {
				return path(true), why, true
			}
			consumed()
		default:
			consumed()
		}
	}
}

// textParams refuses, on every route, query parameters PostgreSQL could not store as text — a NUL, bytes
// that are not UTF-8 — with a 400 naming each, so that no handler passes one on to a query.
func textParams() gin.HandlerFunc {
	return func(c *gin.Context) {
		raw := c.Request.URL.RawQuery
		if !strings.Contains(raw, "%") && utf8.ValidString(raw) {
			c.Next() // nothing escaped: no NUL, and UTF-8 as it stands
			return
		}
		var errs fieldErrors
		for k, vs := range c.Request.URL.Query() {
			if why := ingest.CheckText(k); why != "" {
				errs.add(strconv.Quote(k), "this parameter name %s", why)
				continue
			}
			for _, v := range vs {
				if why := ingest.CheckText(v); why != "" {
					errs.add(k, "%s", why)
					break
				}
			}
		}
		if len(errs) > 0 {
			sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
			writeValidation(c, errs)
			return
		}
		c.Next()
	}
}

func jsonErrorText(err error) string {
	if err == nil {
		return "got null"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// writeValidation answers 400 with every bad field.
func writeValidation(c *gin.Context, errs fieldErrors) {
	p := newProblem(c, http.StatusBadRequest, "invalid request", "one or more fields are invalid; see errors")
	p.Errors = errs
	sendProblem(c, p)
}

// Pagination: ?limit=N (1–MaxPageSize, default DefaultPageSize) and ?cursor=… from the previous page.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// page reads limit and cursor. The cursor is opaque to clients: base64url of the last key seen.
func page(c *gin.Context) (limit int32, cursor string, ok bool) {
	limit = DefaultPageSize
	var errs fieldErrors
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			errs.add("limit", "must be an integer from 1 to %d", MaxPageSize)
		}
		limit = int32(n)
	}
	if s := c.Query("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) > 100 {
			errs.add("cursor", "is not a cursor this API returned")
		}
		cursor = string(raw)
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return 0, "", false
	}
	return limit, cursor, true
}

// Page is the envelope of every list response.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// newPage wraps items; when the page is full, the next cursor points after the last item.
func newPage[T any](items []T, limit int32, lastKey func(T) string) Page[T] {
	p := Page[T]{Items: items}
	if len(items) == int(limit) && len(items) > 0 {
		next := base64.RawURLEncoding.EncodeToString([]byte(lastKey(items[len(items)-1])))
		p.NextCursor = &next
	}
	return p
}

// labelParams reads label.KEY=VALUE query parameters, the first value of each.
func labelParams(c *gin.Context) map[string]string {
	labels := map[string]string{}
	for k, v := range c.Request.URL.Query() {
		if name, ok := strings.CutPrefix(k, "label."); ok && name != "" && len(v) > 0 {
			labels[name] = v[0]
		}
	}
	return labels
}

// labelFilter reads label.KEY=VALUE query parameters as a JSON object for a containment match.
func labelFilter(c *gin.Context) []byte {
	b, _ := json.Marshal(labelParams(c))
	return b
}

// pathID reads the :id path parameter as a positive integer; anything else is a 404, as an id of
// another tenant is.
func pathID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		writeProblem(c, http.StatusNotFound, "not found", "")
		return 0, false
	}
	return id, true
}
