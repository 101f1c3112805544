package poller

import "context"

func (p *Prober) probeTCP(ctx context.Context, c Check) Outcome { return down("tcp checks are not built yet") }
