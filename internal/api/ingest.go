package api

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/ingest"
)

// Size limits of pushes: the body as sent, and once decompressed.
const (
	MaxIngestBody    = 16 << 20
	MaxIngestDecoded = 32 << 20
)

// readPush reads a push body, gunzipping it when Content-Encoding says gzip, within both limits
// (a decompression bomb stops at MaxIngestDecoded bytes). It answers the problem and returns false
// when the body is not acceptable.
func readPush(c *gin.Context) ([]byte, bool) {
	body, refusal := readPushBody(c)
	if refusal != nil {
		writeProblem(c, refusal.status, refusal.title, refusal.detail)
		return nil, false
	}
	return body, true
}

// pushRefusal says why a push body was not read: the status to answer, a title and a detail.
type pushRefusal struct {
	status        int
	title, detail string
}

// readPushBody is readPush without the answer, for routes that answer in their own format (OTLP).
func readPushBody(c *gin.Context) ([]byte, *pushRefusal) {
	var r io.Reader = http.MaxBytesReader(c.Writer, c.Request.Body, MaxIngestBody)
	switch enc := strings.ToLower(c.GetHeader("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, &pushRefusal{http.StatusBadRequest, "malformed body", "Content-Encoding is gzip but the body is not"}
		}
		defer zr.Close()
		r = zr
	default:
		return nil, &pushRefusal{http.StatusUnsupportedMediaType, "unsupported Content-Encoding", "use gzip or none, not " + enc}
	}
	body, err := io.ReadAll(io.LimitReader(r, MaxIngestDecoded+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &pushRefusal{http.StatusRequestEntityTooLarge, "body too large", fmt.Sprintf("the body exceeds %d bytes", MaxIngestBody)}
	case err != nil:
		return nil, &pushRefusal{http.StatusBadRequest, "malformed body", "the body could not be read: " + err.Error()}
	case len(body) > MaxIngestDecoded:
		return nil, &pushRefusal{http.StatusRequestEntityTooLarge, "body too large",
			fmt.Sprintf("the body decompresses to more than %d bytes", MaxIngestDecoded)}
	}
	return body, nil
}

// answerIngestError answers a failed write: busy and unavailable with Retry-After, so clients retry; a
// push refused for its fields with a 400 naming them, so they do not.
func (s *server) answerIngestError(c *gin.Context, err error) {
	var invalid *ingest.InvalidError
	if errors.As(err, &invalid) {
		errs := make(fieldErrors, len(invalid.Fields))
		for i, f := range invalid.Fields {
			errs[i] = FieldError{Field: f.Field, Message: f.Message}
		}
		writeValidation(c, errs)
		return
	}
	if after, busy := ingest.IsBusy(err); busy {
		c.Header("Retry-After", strconv.Itoa(int(after.Round(time.Second).Seconds())))
		writeProblem(c, http.StatusTooManyRequests, "slow down", err.Error())
		return
	}
	var tooLarge *ingest.PushTooLargeError
	if errors.As(err, &tooLarge) {
		writeProblem(c, http.StatusRequestEntityTooLarge, "push too large", err.Error())
		return
	}
	if errors.Is(err, ingest.ErrUnavailable) {
		c.Header("Retry-After", "5")
		writeProblem(c, http.StatusServiceUnavailable, "storage unavailable",
			"the database cannot take writes right now; nothing of this request was stored; retry")
		return
	}
	s.answerError(c, err)
}

// rejectionErrors names rejected points as fields of the body.
func rejectionErrors(rs []ingest.Rejection, what string) fieldErrors {
	const max = 100
	var errs fieldErrors
	for i, r := range rs {
		if i == max {
			errs.add(what, "%d more rejections not listed", len(rs)-max)
			break
		}
		field := fmt.Sprintf("%s[%d]", what, r.Series)
		if r.Sample >= 0 {
			field += fmt.Sprintf(".points[%d]", r.Sample)
		}
		errs.add(field, "%s", r.Reason)
	}
	return errs
}

// ingestJSON is POST /api/v1/ingest, infrawatch's own format.
func (s *server) ingestJSON(c *gin.Context) {
	body, ok := readPush(c)
	if !ok || !storableJSON(c, body, false) {
		return
	}
	push, series, decoded, err := ingest.DecodeJSONPush(body)
	var invalid *ingest.InvalidError
	if errors.As(err, &invalid) {
		s.answerIngestError(c, err)
		return
	} else if err != nil {
		writeProblem(c, http.StatusBadRequest, "malformed ingest body", err.Error())
		return
	}
	var host *ingest.HostDetails
	if push.Host != nil && (push.Host.Labels != nil || push.Host.Metadata != nil) {
		host = &ingest.HostDetails{Labels: push.Host.Labels, Metadata: push.Host.Metadata}
	}
	res, err := s.ingest.Write(c.Request.Context(), principal(c).TenantID, "json", series, host, decoded)
	if err != nil {
		s.answerIngestError(c, err)
		return
	}
	answerResult(c, res, "metrics")
}

// answerResult answers a JSON push (metrics or log entries): 200 with what was stored and what was
// refused, or 400 when nothing was valid.
func answerResult(c *gin.Context, res ingest.Result, what string) {
	if res.Accepted == 0 {
		p := newProblem(c, http.StatusBadRequest, "nothing to store", "no item of this push is valid; see errors")
		p.Errors = rejectionErrors(res.Rejected, what)
		sendProblem(c, p)
		return
	}
	if res.Rejected == nil {
		res.Rejected = []ingest.Rejection{}
	}
	c.JSON(http.StatusOK, res)
}

// answerPartial answers a line protocol or remote write push: 204 when all is stored, else 400 (which
// those clients do not retry) naming what was refused; the valid part is stored either way.
func answerPartial(c *gin.Context, res ingest.Result, title, what string) {
	if len(res.Rejected) == 0 {
		c.Status(http.StatusNoContent)
		return
	}
	p := newProblem(c, http.StatusBadRequest, title, fmt.Sprintf("%d samples stored, %d refused; see errors", res.Accepted, len(res.Rejected)))
	p.Errors = rejectionErrors(res.Rejected, what)
	sendProblem(c, p)
}

// ingestInfluxV1 is POST /api/v1/write, InfluxDB 1.x style (precision: n, u, ms, s, m, h).
func (s *server) ingestInfluxV1(c *gin.Context) { s.ingestInflux(c, c.DefaultQuery("precision", "ns")) }

// ingestInfluxV2 is POST /api/v2/write, what Telegraf's influxdb_v2 output sends (precision: ns, us, ms, s).
func (s *server) ingestInfluxV2(c *gin.Context) { s.ingestInflux(c, c.DefaultQuery("precision", "ns")) }

func (s *server) ingestInflux(c *gin.Context, precision string) {
	body, ok := readPush(c)
	if !ok {
		return
	}
	series, decoded, err := ingest.ParseLineProtocol(body, precision, time.Now())
	if err != nil {
		writeValidation(c, fieldErrors{{Field: "precision", Message: err.Error()}})
		return
	}
	res, err := s.ingest.Write(c.Request.Context(), principal(c).TenantID, "influx", series, nil, decoded)
	if err != nil {
		s.answerIngestError(c, err)
		return
	}
	answerPartial(c, res, "partial write", "line") // as InfluxDB answers a partial write
}

// remoteWrite1ContentType says whether a Content-Type names a remote write 1.0 body, and if not, why.
// Remote write 2.0 sends the same media type with proto=io.prometheus.write.v2.Request: a different
// message, which read as 1.0 holds nothing, so it must be refused (415 lets a 2.0 sender fall back to
// 1.0), never answered 204.
func remoteWrite1ContentType(header string) (bool, string) {
	if header == "" {
		return true, ""
	}
	media, params, err := mime.ParseMediaType(header)
	if err != nil || media != "application/x-protobuf" {
		return false, "remote write bodies are application/x-protobuf, not " + header
	}
	if proto, ok := params["proto"]; ok && proto != "prometheus.WriteRequest" {
		return false, "this endpoint takes remote write 1.0 (proto=prometheus.WriteRequest), not proto=" + proto +
			"; configure the sender for remote write 1.0 (Prometheus: protobuf_message: prometheus.WriteRequest)"
	}
	return true, ""
}

// ingestRemoteWrite is POST /api/v1/prom/write, Prometheus remote write 1.0: 204 when stored, 400 for
// what must not be retried, 429 and 5xx (with Retry-After) for what should.
func (s *server) ingestRemoteWrite(c *gin.Context) {
	if enc := c.GetHeader("Content-Encoding"); !strings.EqualFold(enc, "snappy") {
		writeProblem(c, http.StatusUnsupportedMediaType, "unsupported Content-Encoding", "remote write bodies are snappy-compressed")
		return
	}
	if ok, detail := remoteWrite1ContentType(c.GetHeader("Content-Type")); !ok {
		writeProblem(c, http.StatusUnsupportedMediaType, "unsupported Content-Type", detail)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxIngestBody))
	if err != nil {
		writeProblem(c, http.StatusRequestEntityTooLarge, "body too large", fmt.Sprintf("the body exceeds %d bytes", MaxIngestBody))
		return
	}
	series, decoded, err := ingest.DecodeRemoteWrite(body, MaxIngestDecoded)
	if errors.Is(err, ingest.ErrRemoteWriteTooLarge) {
		writeProblem(c, http.StatusRequestEntityTooLarge, "body too large", err.Error())
		return
	} else if err != nil {
		writeProblem(c, http.StatusBadRequest, "malformed remote write request", err.Error())
		return
	}
	res, err := s.ingest.Write(c.Request.Context(), principal(c).TenantID, "remote_write", series, nil, decoded)
	if err != nil {
		s.answerIngestError(c, err)
		return
	}
	answerPartial(c, res, "samples refused", "timeseries")
}
