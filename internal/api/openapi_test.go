package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// routeEngine builds the full engine without a database: a non-nil Auth and Ingest register every route, and
// nothing is called while they are registered.
func routeEngine() *gin.Engine {
	return api.NewHandler(api.Deps{
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: api.NewRegistry(),
		Auth:     &auth.Service{},
		Ingest:   &ingest.Service{},
		Operator: &tenant.Operator{},
	})
}

// The parts of an OpenAPI document the tests look at.
type (
	oaParameter struct {
		Ref      string `json:"$ref"`
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	}
	oaOperation struct {
		OperationID string                     `json:"operationId"`
		Summary     string                     `json:"summary"`
		Parameters  []oaParameter              `json:"parameters"`
		Responses   map[string]json.RawMessage `json:"responses"`
	}
	oaPathItem struct {
		Parameters []oaParameter `json:"parameters"`
		Operations map[string]oaOperation
	}
	oaDocument struct {
		OpenAPI    string                `json:"openapi"`
		Paths      map[string]oaPathItem `json:"paths"`
		Components struct {
			Parameters map[string]oaParameter `json:"parameters"`
		} `json:"components"`
	}
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// UnmarshalJSON splits a path item into its shared parameters and its operations by method.
func (p *oaPathItem) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Operations = map[string]oaOperation{}
	for key, v := range raw {
		switch {
		case key == "parameters":
			if err := json.Unmarshal(v, &p.Parameters); err != nil {
				return err
			}
		case slices.Contains(httpMethods, key):
			var op oaOperation
			if err := json.Unmarshal(v, &op); err != nil {
				return err
			}
			p.Operations[strings.ToUpper(key)] = op
		}
	}
	return nil
}

func parseOpenAPI(t *testing.T, b []byte) oaDocument {
	t.Helper()
	var doc oaDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath turns gin's /hosts/:id (or a catch-all *name) into OpenAPI's /hosts/{id}.
func openAPIPath(ginPath string) string { return ginParam.ReplaceAllString(ginPath, "{$1}") }

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range routeEngine().Routes() {
		routes[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range parseOpenAPI(t, api.OpenAPI).Paths {
		for method := range item.Operations {
			documented[method+" "+path] = true
		}
	}
	if !routes["GET /api/v1/hosts/{id}"] || !routes["GET /healthz"] {
		t.Fatalf("the engine lacks GET /api/v1/hosts/{id} or GET /healthz; were the routes registered? %v", routes)
	}

	var undocumented, unrouted []string
	for r := range routes {
		if !documented[r] {
			undocumented = append(undocumented, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			unrouted = append(unrouted, d)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unrouted)
	if len(undocumented) > 0 {
		t.Errorf("routes missing from openapi.json:\n  %s", strings.Join(undocumented, "\n  "))
	}
	if len(unrouted) > 0 {
		t.Errorf("operations in openapi.json with no route:\n  %s", strings.Join(unrouted, "\n  "))
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	srv := httptest.NewServer(routeEngine())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d %s", resp.StatusCode, body)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if doc := parseOpenAPI(t, body); doc.OpenAPI != "3.1.0" {
		t.Errorf(`"openapi" = %q, want "3.1.0"`, doc.OpenAPI)
	}
}

var pathTemplateParam = regexp.MustCompile(`\{([^{}]+)\}`)

// TestOpenAPIDocumentIsWellFormed checks what a client generator relies on: unique operation ids,
// responses on every operation, and a declared, required parameter for every path template variable.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc := parseOpenAPI(t, api.OpenAPI)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf(`"openapi" = %q, want "3.1.0"`, doc.OpenAPI)
	}
	resolve := func(where string, p oaParameter) (oaParameter, bool) {
		if p.Ref == "" {
			return p, true
		}
		name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
		target, found := doc.Components.Parameters[name]
		if !ok || !found {
			t.Errorf("%s: parameter reference %q does not resolve", where, p.Ref)
			return oaParameter{}, false
		}
		return target, true
	}

	seenIDs := map[string]string{}
	for path, item := range doc.Paths {
		if len(item.Operations) == 0 {
			t.Errorf("%s: no operations", path)
		}
		for method, op := range item.Operations {
			where := method + " " + path
			switch prev, dup := seenIDs[op.OperationID]; {
			case op.OperationID == "":
				t.Errorf("%s: no operationId", where)
			case dup:
				t.Errorf("%s: operationId %q is also used by %s", where, op.OperationID, prev)
			default:
				seenIDs[op.OperationID] = where
			}
			if op.Summary == "" {
				t.Errorf("%s: no summary", where)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses", where)
			}

			declared := map[string]bool{}
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				p, ok := resolve(where, p)
				if !ok || p.In != "path" {
					continue
				}
				if !p.Required {
					t.Errorf("%s: path parameter %q must be required", where, p.Name)
				}
				declared[p.Name] = true
			}
			inTemplate := map[string]bool{}
			for _, m := range pathTemplateParam.FindAllStringSubmatch(path, -1) {
				inTemplate[m[1]] = true
				if !declared[m[1]] {
					t.Errorf("%s: path parameter {%s} is not declared in parameters", where, m[1])
				}
			}
			for name := range declared {
				if !inTemplate[name] {
					t.Errorf("%s: path parameter %q is declared but not in the path", where, name)
				}
			}
		}
	}
}
