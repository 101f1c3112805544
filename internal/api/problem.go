package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors lists every invalid field of a 400 answer.
	Errors []FieldError `json:"errors,omitempty"`
	// Tenants lists the tenants to choose from when a login by a member of several omits tenant_id
	// (only after the password was verified).
	Tenants []auth.TenantMembership `json:"tenants,omitempty"`
}

func newProblem(c *gin.Context, status int, title, detail string) Problem {
	return Problem{Type: "about:blank", Title: title, Status: status, Detail: detail,
		Instance: c.Request.URL.Path, RequestID: c.GetString(requestIDKey)}
}

func sendProblem(c *gin.Context, p Problem) {
	if isPrometheusAPI(c) {
		sendPrometheusError(c, p) // Prometheus's clients (Grafana) read its error shape
		return
	}
	c.Header("Content-Type", "application/problem+json")
	c.Abort()
	c.Status(p.Status)
	body, _ := json.Marshal(p)
	_, _ = c.Writer.Write(body)
}

// writeProblem ends the request with a problem+json body.
func writeProblem(c *gin.Context, status int, title, detail string) {
	sendProblem(c, newProblem(c, status, title, detail))
}

// recoverProblem turns a panic in a handler into a 500 problem, logged with its request id. The client
// learns nothing of the panic's content.
func recoverProblem(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		log.Error("handler panicked", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "panic", rec)
		writeProblem(c, http.StatusInternalServerError, "internal error",
			"the server failed to handle this request; quote the request id when reporting it")
	})
}

func uitoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }
