// Package eventshape makes the payloads functions receive for events that
// are not HTTP calls, in the shapes their code already reads:
//
//   - Lambda-contract functions (runtime process, nodejs, python) get
//     Lambda's own shapes: an EventBridge "Scheduled Event" for a cron tick,
//     and an SQS-like {"Records": [...]} batch for broker messages. They
//     answer a batch with {"batchItemFailures": [{"itemIdentifier": ID}]}
//     to fail only some of its messages (partial batch response). A batch
//     of object storage events comes as S3 delivers them to Lambda: one
//     {"Records": [...]} of S3 event records (S3Records).
//   - wasm functions get a CloudEvents 1.0 JSON envelope (structured mode,
//     Content-Type application/cloudevents+json): specversion, id, source,
//     type, time, datacontenttype, subject and data; a batch is a JSON
//     array of envelopes (application/cloudevents-batch+json), and a
//     function answers it like a Lambda one, or with any 2xx for all.
//
// It must not import runtimes, stores or the bus.
package eventshape

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Platform constants in Lambda-shaped events.
const (
	Account = "000000000000" // the account ID in ARNs, as Lambda functions see it
	// Content types of CloudEvents envelopes.
	CloudEventType      = "application/cloudevents+json"
	CloudEventBatchType = "application/cloudevents-batch+json"
)

// ScheduledEvent is EventBridge's "Scheduled Event" for a cron tick.
func ScheduledEvent(id, region, function string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
		"account": Account, "time": at.UTC().Format(time.RFC3339), "region": region,
		"resources": []string{"arn:aws:events:" + region + ":" + Account + ":rule/hostless-cron-" + function},
		"detail":    map[string]any{},
	})
	return b
}

// CloudEvent is a CloudEvents 1.0 envelope in JSON.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
}

// NewCloudEvent makes an envelope; data that is JSON goes in data as it
// is, other UTF-8 text as a JSON string, anything else in data_base64.
func NewCloudEvent(id, source, typ, subject string, at time.Time, data []byte) CloudEvent {
	e := CloudEvent{SpecVersion: "1.0", ID: id, Source: source, Type: typ, Subject: subject,
		Time: at.UTC().Format(time.RFC3339Nano)}
	switch {
	case len(data) == 0:
	case json.Valid(data):
		e.DataContentType, e.Data = "application/json", data
	case utf8.Valid(data):
		e.DataContentType = "text/plain"
		e.Data, _ = json.Marshal(string(data))
	default:
		e.DataContentType, e.DataBase64 = "application/octet-stream", base64.StdEncoding.EncodeToString(data)
	}
	return e
}

// Message is one broker message, for Records and CloudEvents batches.
type Message struct {
	ID      string
	Source  string // the broker kind: nats, jetstream, amqp, mqtt, redis
	Subject string // subject, queue, topic or stream key
	Data    []byte
	Headers map[string]string
	Time    time.Time
	Attempt int // 1 on the first delivery
}

// sqsRecord is one message of a Records batch, in the shape of SQS's.
type sqsRecord struct {
	MessageID         string                   `json:"messageId"`
	ReceiptHandle     string                   `json:"receiptHandle"`
	Body              string                   `json:"body"`
	Attributes        map[string]string        `json:"attributes"`
	MessageAttributes map[string]sqsAttributes `json:"messageAttributes"`
	MD5OfBody         string                   `json:"md5OfBody"`
	EventSource       string                   `json:"eventSource"`
	EventSourceARN    string                   `json:"eventSourceARN"`
	AWSRegion         string                   `json:"awsRegion"`
}

type sqsAttributes struct {
	StringValue string `json:"stringValue"`
	DataType    string `json:"dataType"`
}

// Records is a batch of broker messages as an SQS event: {"Records":
// [...]}, each with messageId (what batchItemFailures names), body (the
// message as text; base64 when it is not UTF-8, with the attribute
// hostless.encoding = base64), attributes (ApproximateReceiveCount,
// SentTimestamp), messageAttributes (the message's headers),
// eventSource "hostless:<kind>" and eventSourceARN naming the subject.
func Records(region string, batch []Message) []byte {
	recs := make([]sqsRecord, len(batch))
	for i, m := range batch {
		r := sqsRecord{MessageID: m.ID, ReceiptHandle: m.ID, EventSource: "hostless:" + m.Source,
			EventSourceARN: "arn:hostless:" + m.Source + ":" + region + ":" + Account + ":" + m.Subject, AWSRegion: region,
			Attributes: map[string]string{
				"ApproximateReceiveCount": strconv.Itoa(max(m.Attempt, 1)),
				"SentTimestamp":           strconv.FormatInt(m.Time.UnixMilli(), 10),
			},
			MessageAttributes: map[string]sqsAttributes{},
		}
		if utf8.Valid(m.Data) {
			r.Body = string(m.Data)
		} else {
			r.Body = base64.StdEncoding.EncodeToString(m.Data)
			r.MessageAttributes["hostless.encoding"] = sqsAttributes{StringValue: "base64", DataType: "String"}
		}
		for k, v := range m.Headers {
			r.MessageAttributes[k] = sqsAttributes{StringValue: v, DataType: "String"}
		}
		recs[i] = r
	}
	b, _ := json.Marshal(map[string]any{"Records": recs})
	return b
}

// S3Records merges a batch of messages whose data are S3 event
// notifications ({"Records": [{"eventSource": "aws:s3", ...}]}, as the
// object storage emits them) into one notification with every record, the
// event S3 gives a Lambda function. ok is false when any message is not
// such a notification.
func S3Records(batch []Message) (body []byte, ok bool) {
	var recs []json.RawMessage
	for _, m := range batch {
		var n struct {
			Records []json.RawMessage `json:"Records"`
		}
		if json.Unmarshal(m.Data, &n) != nil || len(n.Records) == 0 {
			return nil, false
		}
		for _, r := range n.Records {
			var src struct {
				EventSource string `json:"eventSource"`
			}
			if json.Unmarshal(r, &src) != nil || src.EventSource != "aws:s3" {
				return nil, false
			}
		}
		recs = append(recs, n.Records...)
	}
	if len(recs) == 0 {
		return nil, false
	}
	b, _ := json.Marshal(map[string]any{"Records": recs})
	return b, true
}

// CloudEvents is a batch of broker messages as CloudEvents envelopes.
func CloudEvents(batch []Message) []byte {
	evs := make([]CloudEvent, len(batch))
	for i, m := range batch {
		evs[i] = NewCloudEvent(m.ID, "hostless/"+m.Source+"/"+m.Subject, "dev.hostless.message", m.Subject, m.Time, m.Data)
	}
	b, _ := json.Marshal(evs)
	return b
}

// BatchFailures reads a function's answer to a batch: the IDs in its
// batchItemFailures (Lambda's partial batch response). ok is false when
// the answer is not such a response (then the batch succeeded as a
// whole). A failure naming no message of the batch fails the whole batch,
// as Lambda does.
func BatchFailures(body []byte) (ids []string, ok bool) {
	var r struct {
		BatchItemFailures *[]struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if len(body) == 0 || json.Unmarshal(body, &r) != nil || r.BatchItemFailures == nil {
		return nil, false
	}
	for _, f := range *r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids, true
}
