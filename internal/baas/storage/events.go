package storage

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hostless/hostless/internal/store"
)

// The platform events of objects, emitted through Config.Emit.
const (
	// EventCreated is emitted after an object was written (PUT, copy,
	// completed multipart upload, browser upload).
	EventCreated = "storage.object.created"
	// EventDeleted is emitted after an object was deleted.
	EventDeleted = "storage.object.deleted"
)

// The S3 eventName of each way an object changes.
const (
	eventPut       = "ObjectCreated:Put"
	eventCopy      = "ObjectCreated:Copy"
	eventMultipart = "ObjectCreated:CompleteMultipartUpload"
	eventDelete    = "ObjectRemoved:Delete"
)

// emitObject emits the platform event of a change to o, its data in S3's
// own notification shape (Records[].s3), so a Lambda handler written for
// S3 notifications (aws-lambda-go's events.S3Event) decodes it unchanged.
func (h *Handler) emitObject(s3Event string, o store.Object) {
	if h.cfg.Emit == nil {
		return
	}
	name := EventCreated
	if strings.HasPrefix(s3Event, "ObjectRemoved:") {
		name = EventDeleted
	}
	h.cfg.Emit(name, s3EventJSON(h.cfg.Region, s3Event, o, h.cfg.Now()))
}

// s3EventJSON renders one S3 event notification.
func s3EventJSON(region, s3Event string, o store.Object, at time.Time) []byte {
	rec := events.S3EventRecord{
		EventVersion: "2.1",
		EventSource:  "aws:s3",
		AWSRegion:    region,
		EventTime:    at.UTC(),
		EventName:    s3Event,
		PrincipalID:  events.S3UserIdentity{PrincipalID: hostID},
		ResponseElements: map[string]string{
			"x-amz-request-id": strconv.FormatInt(at.UnixNano(), 16),
			"x-amz-id-2":       hostID,
		},
		S3: events.S3Entity{
			SchemaVersion:   "1.0",
			ConfigurationID: "hostless",
			Bucket: events.S3Bucket{
				Name:          o.Bucket,
				OwnerIdentity: events.S3UserIdentity{PrincipalID: hostID},
				Arn:           "arn:aws:s3:::" + o.Bucket,
			},
			Object: events.S3Object{
				Key:       eventKey(o.Key),
				Size:      o.Size,
				ETag:      o.ETag,
				Sequencer: strconv.FormatInt(at.UnixNano(), 16),
			},
		},
	}
	b, _ := json.Marshal(events.S3Event{Records: []events.S3EventRecord{rec}})
	return b
}

// eventKey encodes a key as S3 notifications do: form-encoded (a space is
// "+"), with the "/" between segments kept.
func eventKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, "/")
}
