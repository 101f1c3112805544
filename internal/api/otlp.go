package api

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/infrawatch/infrawatch/internal/ingest"
)

// OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/metrics and /v1/logs, the
// paths OpenTelemetry SDKs and the Collector's otlphttp exporter append to their endpoint. Bodies are
// protobuf (application/x-protobuf) or JSON (application/json), gzip welcome; the answer is in the
// request's encoding: 200 with an Export…ServiceResponse (partial_success naming what was refused), and
// for errors a google.rpc.Status, as the specification asks: 400 for a body that does not decode, 415 for
// another Content-Type, 413 past the size limits, 429 and 503 with Retry-After for what the client should
// send again.

// otlpEncoding reads the Content-Type of an OTLP request.
func otlpEncoding(c *gin.Context) (ingest.OTLPEncoding, bool) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-protobuf":
		return ingest.OTLPProtobuf, true
	case "application/json":
		return ingest.OTLPJSON, true
	}
	return 0, false
}

// gRPC status codes that OTLP's Status carries (google.rpc.Code).
const (
	grpcInvalidArgument   = 3
	grpcResourceExhausted = 8
	grpcInternal          = 13
	grpcUnavailable       = 14
)

// otlpFail answers an OTLP request with an HTTP status and a google.rpc.Status in the request's encoding.
func otlpFail(c *gin.Context, enc ingest.OTLPEncoding, status int, code int32, message string) {
	st := &rpcstatus.Status{Code: code, Message: message}
	var body []byte
	contentType := "application/x-protobuf"
	if enc == ingest.OTLPJSON {
		body, _ = protojson.Marshal(st)
		contentType = "application/json"
	} else {
		body, _ = proto.Marshal(st)
	}
	c.Abort()
	c.Data(status, contentType, body)
}

// otlpBody checks the Content-Type and reads the body, answering when either is refused.
func otlpBody(c *gin.Context) ([]byte, ingest.OTLPEncoding, bool) {
	enc, ok := otlpEncoding(c)
	if !ok {
		// Neither encoding was asked for: the Status goes as JSON, readable by a person with curl.
		otlpFail(c, ingest.OTLPJSON, http.StatusUnsupportedMediaType, grpcInvalidArgument,
			"Content-Type must be application/x-protobuf or application/json")
		return nil, enc, false
	}
	body, refusal := readPushBody(c)
	if refusal != nil {
		otlpFail(c, enc, refusal.status, grpcInvalidArgument, refusal.title+": "+refusal.detail)
		return nil, enc, false
	}
	return body, enc, true
}

// answerOTLPError answers a write that failed: the client retries 429 and 503 after Retry-After.
func (s *server) answerOTLPError(c *gin.Context, enc ingest.OTLPEncoding, err error) {
	if after, busy := ingest.IsBusy(err); busy {
		c.Header("Retry-After", strconv.Itoa(int(after.Round(time.Second).Seconds())))
		otlpFail(c, enc, http.StatusTooManyRequests, grpcResourceExhausted, err.Error())
		return
	}
	var tooLarge *ingest.PushTooLargeError
	if errors.As(err, &tooLarge) {
		otlpFail(c, enc, http.StatusRequestEntityTooLarge, grpcInvalidArgument, err.Error())
		return
	}
	if errors.Is(err, ingest.ErrUnavailable) {
		c.Header("Retry-After", "5")
		otlpFail(c, enc, http.StatusServiceUnavailable, grpcUnavailable,
			"the database cannot take writes right now; nothing of this request was stored; retry")
		return
	}
	s.log.Error("OTLP write failed", "request_id", c.GetString(requestIDKey), "err", err)
	otlpFail(c, enc, http.StatusInternalServerError, grpcInternal,
		"the server failed to store this request; quote the request id "+c.GetString(requestIDKey)+" when reporting it")
}

// otlpAnswer sends a successful export's response in the request's encoding.
func otlpAnswer(c *gin.Context, enc ingest.OTLPEncoding, body []byte, err error) {
	if err != nil {
		otlpFail(c, enc, http.StatusInternalServerError, grpcInternal, "encode the response: "+err.Error())
		return
	}
	contentType := "application/x-protobuf"
	if enc == ingest.OTLPJSON {
		contentType = "application/json"
	}
	c.Data(http.StatusOK, contentType, body)
}

// otlpMetrics is POST /v1/metrics.
func (s *server) otlpMetrics(c *gin.Context) {
	body, enc, ok := otlpBody(c)
	if !ok {
		return
	}
	md, err := ingest.DecodeOTLPMetrics(body, enc)
	if err != nil {
		otlpFail(c, enc, http.StatusBadRequest, grpcInvalidArgument, err.Error())
		return
	}
	res, err := s.ingest.WriteOTLPMetrics(c.Request.Context(), principal(c).TenantID, md)
	if err != nil {
		s.answerOTLPError(c, enc, err)
		return
	}
	out, err := ingest.EncodeOTLPMetricsResponse(res, enc)
	otlpAnswer(c, enc, out, err)
}

// otlpLogs is POST /v1/logs.
func (s *server) otlpLogs(c *gin.Context) {
	body, enc, ok := otlpBody(c)
	if !ok {
		return
	}
	ld, err := ingest.DecodeOTLPLogs(body, enc)
	if err != nil {
		otlpFail(c, enc, http.StatusBadRequest, grpcInvalidArgument, err.Error())
		return
	}
	res, err := s.ingest.WriteOTLPLogs(c.Request.Context(), principal(c).TenantID, ld)
	if err != nil {
		s.answerOTLPError(c, enc, err)
		return
	}
	out, err := ingest.EncodeOTLPLogsResponse(res, enc)
	otlpAnswer(c, enc, out, err)
}
