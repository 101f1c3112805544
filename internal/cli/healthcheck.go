package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runHealthcheck lets a container image without curl check its own server.
func runHealthcheck(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "healthcheck", "healthcheck [--url URL]")
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "probe to request; any 2xx answer is healthy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	return nil
}
