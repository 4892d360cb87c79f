package eventshape

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The shapes decode into aws-lambda-go's own types, as a handler's would.
func TestScheduledEvent(t *testing.T) {
	at := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(ScheduledEvent("id1", "eu-west-1", "nightly", at), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.ID != "id1" || !ev.Time.Equal(at) ||
		ev.Region != "eu-west-1" || len(ev.Resources) != 1 || string(ev.Detail) != "{}" {
		t.Errorf("%+v", ev)
	}
}

func TestRecords(t *testing.T) {
	at := time.UnixMilli(1764133200123)
	b := Records("us-east-1", []Message{
		{ID: "m1", Source: "amqp", Subject: "orders", Data: []byte(`{"n":1}`), Headers: map[string]string{"k": "v"}, Time: at, Attempt: 2},
		{ID: "m2", Source: "amqp", Subject: "orders", Data: []byte{0xff, 0}, Time: at},
	})
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 2 {
		t.Fatalf("%s", b)
	}
	r := ev.Records[0]
	if r.MessageId != "m1" || r.Body != `{"n":1}` || r.Attributes["ApproximateReceiveCount"] != "2" ||
		r.Attributes["SentTimestamp"] != "1764133200123" || *r.MessageAttributes["k"].StringValue != "v" || r.EventSource != "hostless:amqp" {
		t.Errorf("%+v", r)
	}
	if r := ev.Records[1]; r.Body != "/wA=" || *r.MessageAttributes["hostless.encoding"].StringValue != "base64" {
		t.Errorf("binary body: %+v", r)
	}
}

func TestBatchFailures(t *testing.T) {
	b, _ := json.Marshal(events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m2"}}})
	if ids, ok := BatchFailures(b); !ok || !slices.Equal(ids, []string{"m2"}) {
		t.Errorf("%s: %v %v", b, ids, ok)
	}
	if ids, ok := BatchFailures([]byte(`{"batchItemFailures":[]}`)); !ok || len(ids) != 0 {
		t.Errorf("empty list: %v %v", ids, ok)
	}
	for _, body := range []string{"", "null", `{"statusCode":200}`, "not json", `[1]`} {
		if _, ok := BatchFailures([]byte(body)); ok {
			t.Errorf("%q read as a batch response", body)
		}
	}
}

func TestCloudEvents(t *testing.T) {
	at := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	var evs []CloudEvent
	if err := json.Unmarshal(CloudEvents([]Message{
		{ID: "1", Source: "nats", Subject: "a.b", Data: []byte(`{"x":1}`), Time: at},
		{ID: "2", Source: "nats", Subject: "a.b", Data: []byte("plain"), Time: at},
		{ID: "3", Source: "nats", Subject: "a.b", Data: []byte{0xff}, Time: at},
	}), &evs); err != nil {
		t.Fatal(err)
	}
	if evs[0].SpecVersion != "1.0" || string(evs[0].Data) != `{"x":1}` || evs[0].DataContentType != "application/json" ||
		string(evs[1].Data) != `"plain"` || evs[2].DataBase64 != "/w==" || evs[0].Source != "hostless/nats/a.b" {
		t.Errorf("%+v", evs)
	}
}

// TestS3Records: a batch of object storage events reaches a Lambda
// function as one S3 notification with every record (events.S3Event);
// a batch with anything else keeps the SQS shape.
func TestS3Records(t *testing.T) {
	rec := func(key string) []byte {
		return []byte(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"uploads"},"object":{"key":"` + key + `","size":3}}}]}`)
	}
	b, ok := S3Records([]Message{{ID: "1", Data: rec("a.jpg")}, {ID: "2", Data: rec("my+cat.jpg")}})
	if !ok {
		t.Fatal("S3 notifications not recognized")
	}
	var ev events.S3Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 2 || ev.Records[0].S3.Object.Key != "a.jpg" || ev.Records[1].S3.Object.Key != "my+cat.jpg" ||
		ev.Records[1].S3.Bucket.Name != "uploads" || ev.Records[0].EventName != "ObjectCreated:Put" {
		t.Fatalf("%s", b)
	}
	for name, data := range map[string][]byte{
		"another event":      []byte(`{"function":"f"}`),
		"not JSON":           []byte("hello"),
		"no records":         []byte(`{"Records":[]}`),
		"another source":     []byte(`{"Records":[{"eventSource":"aws:sqs"}]}`),
		"records not a list": []byte(`{"Records":{}}`),
	} {
		if _, ok := S3Records([]Message{{ID: "1", Data: rec("a")}, {ID: "2", Data: data}}); ok {
			t.Errorf("%s: taken for an S3 batch", name)
		}
	}
}
