package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hostless/hostless/internal/baas/storage"
)

// eventLog records emitted platform events.
type eventLog struct {
	mu     sync.Mutex
	names  []string
	events []events.S3Event
}

func (l *eventLog) emit(t testing.TB) func(string, []byte) {
	return func(name string, data []byte) {
		var ev events.S3Event
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Errorf("event %s does not decode as events.S3Event: %v", name, err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.names = append(l.names, name)
		l.events = append(l.events, ev)
	}
}

func (l *eventLog) all() ([]string, []events.S3Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...), append([]events.S3Event(nil), l.events...)
}

// TestS3APIEmitsEvents: a PutObject and a DeleteObject through the S3 API
// emit storage.object.created and .deleted in S3's notification shape.
func TestS3APIEmitsEvents(t *testing.T) {
	t.Parallel()
	var log eventLog
	s := newServer(t, serverOptions{emit: log.emit(t)})
	c := s.awsClient(testCreds)
	ctx := context.Background()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pics")})
	must(t, err)
	body := []byte("hello, events")
	key := "in box/cat+dog é.jpg"
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pics"), Key: aws.String(key), Body: bytes.NewReader(body)})
	must(t, err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("pics"), Key: aws.String(key)})
	must(t, err)

	names, evs := log.all()
	if len(names) != 2 || names[0] != storage.EventCreated || names[1] != storage.EventDeleted {
		t.Fatalf("events = %v, want [%s %s]", names, storage.EventCreated, storage.EventDeleted)
	}
	for i, want := range []string{"ObjectCreated:Put", "ObjectRemoved:Delete"} {
		if len(evs[i].Records) != 1 {
			t.Fatalf("event %d has %d records", i, len(evs[i].Records))
		}
		r := evs[i].Records[0]
		if r.EventName != want || r.EventSource != "aws:s3" || r.AWSRegion != testRegion || r.EventTime.IsZero() {
			t.Errorf("event %d: name %q source %q region %q time %v", i, r.EventName, r.EventSource, r.AWSRegion, r.EventTime)
		}
		if r.S3.Bucket.Name != "pics" || r.S3.Object.URLDecodedKey != key {
			t.Errorf("event %d: bucket %q key %q (decoded %q)", i, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.URLDecodedKey)
		}
		if r.S3.Object.Key != "in+box/cat%2Bdog+%C3%A9.jpg" {
			t.Errorf("event %d: key %q is not URL-encoded as S3 does", i, r.S3.Object.Key)
		}
	}
	created := evs[0].Records[0].S3.Object
	if created.Size != int64(len(body)) || created.ETag != md5hex(body) {
		t.Errorf("created: size %d etag %q, want %d %q", created.Size, created.ETag, len(body), md5hex(body))
	}
}
