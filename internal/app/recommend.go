package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/producers/reco"
	"github.com/streamrec/streamrec/schemas"
)

// Recommend sends one request to the configured requests topic through a
// reco client with its own reply topic, and waits up to timeout for the
// reply (`streamrec recommend`). The reply comes back with an error that
// wraps reco.ErrReply when the server answered with an error.
func Recommend(ctx context.Context, cfg config.Config, log *slog.Logger, req schemas.RecoRequest, timeout time.Duration) (schemas.RecoReply, error) {
	c, err := newRecoClient(ctx, cfg, log, timeout)
	if err != nil {
		return schemas.RecoReply{}, err
	}
	defer c.Close()
	return c.Recommend(ctx, req)
}

// newRecoClient builds a reco client for the configured requests topic and
// limits, waiting up to timeout for a reply; close it when done.
func newRecoClient(ctx context.Context, cfg config.Config, log *slog.Logger, timeout time.Duration) (*reco.Client, error) {
	rc := reco.DefaultConfig()
	rc.RequestTopic = cfg.Topics.Requests.Name
	rc.Limits = cfg.Limits
	rc.Timeout = timeout
	return reco.New(ctx, cfg.Kafka, rc, log)
}
