package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hostless/hostless/internal/blob"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
	"github.com/hostless/hostless/internal/blob/natsobj"
	"github.com/hostless/hostless/internal/config"
)

// objectBlobs opens the blob store of the S3 objects' bytes that
// --object-store names: files under <data>/objects, or the object store
// bucket <prefix>objects on the bus's NATS. Call it after startAsync.
func (a *App) objectBlobs(ctx context.Context) (blob.Store, error) {
	if a.cfg.ObjectStore != config.ObjectStoreNATS {
		blobs := blobfs.New(filepath.Join(a.cfg.DataDir, "objects"))
		if !a.cfg.DataSyncAlways {
			blobs.WithoutSync() // as the backend's data: survives kill -9, not power loss
		}
		if err := blobs.Open(); err != nil {
			return nil, fmt.Errorf("open object blobs: %w", err)
		}
		return blobs, nil
	}
	if a.bus == nil || !a.bus.Connected() {
		return nil, errors.New("object-store nats: needs the bus's NATS connection, and it is not open")
	}
	js, err := jetstream.New(a.bus.Conn())
	if err != nil {
		return nil, fmt.Errorf("object-store nats: %w", err)
	}
	blobs := natsobj.New(js, natsobj.Config{Bucket: a.bus.Prefix() + "objects", Log: a.log})
	if err := blobs.Open(ctx); err != nil {
		return nil, fmt.Errorf("object-store nats: %w", err)
	}
	if a.bus.Embedded() && a.cfg.DataSyncAlways && !a.cfg.BusSyncAlways {
		a.log.Warn("object bytes in the embedded NATS are not fsynced before they are acknowledged: --data-sync-always covers SQLite only; add --bus-sync-always")
	}
	return blobs, nil
}
