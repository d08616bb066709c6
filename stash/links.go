package stash

import (
	"context"
	"fmt"
	"strings"
)

// linkConfig holds share-link settings; filled in by the share-link work.
type linkConfig struct{}

func isLink(address string) bool {
	return strings.HasPrefix(address, "https://") || strings.HasPrefix(address, "http://")
}

func (e *Engine) retrieveLink(ctx context.Context, address string) (*Stash, error) {
	return nil, fmt.Errorf("%w: share links", ErrUnsupported)
}
