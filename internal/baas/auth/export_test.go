package auth

import "context"

// ReloadKeys does what the service's minute ticker does to the signing
// keys, at the service's clock: tests advance a fake clock and call it
// instead of waiting a minute.
func (s *Service) ReloadKeys(ctx context.Context) error { return s.keys.reload(ctx, s.now()) }
