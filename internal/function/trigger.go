package function

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Trigger is one of a function's event source mappings: a broker
// subscription whose messages run the function in batches (the trigger
// package's Config, minus what the platform sets: its name and retries,
// which follow the function's retry policy). Type "events" subscribes to
// the platform's own events on its bus.
type Trigger struct {
	Type        string   `json:"type"`
	URL         string   `json:"url,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Stream      string   `json:"stream,omitempty"`
	Queue       string   `json:"queue,omitempty"`
	Topic       string   `json:"topic,omitempty"`
	Group       string   `json:"group,omitempty"`
	QoS         *int     `json:"qos,omitempty"`
	BatchSize   int      `json:"batch_size,omitempty"`
	BatchWindow Duration `json:"batch_window,omitzero"`
	Concurrency int      `json:"concurrency,omitempty"`
	AckWait     Duration `json:"ack_wait,omitzero"`
	// Events are the platform events of an "events" trigger, such as
	// function.deployed or invocation.failed ("*" for all).
	Events []string `json:"events,omitempty"`
}

// Trigger types.
const (
	TriggerNATS      = "nats"
	TriggerJetStream = "jetstream"
	TriggerAMQP      = "amqp"
	TriggerMQTT      = "mqtt"
	TriggerRedis     = "redis"
	TriggerEvents    = "events"
)

// MaxTriggers bounds a function's triggers.
const MaxTriggers = 16

// PlatformEvents are the events the platform publishes on its bus.
var PlatformEvents = []string{"function.deployed", "function.deleted", "invocation.failed"}

// validateTriggers checks what the function domain knows of triggers; the
// trigger package checks each broker's settings at deploy.
func (s *Spec) validateTriggers() error {
	if len(s.Triggers) > MaxTriggers {
		return fmt.Errorf("%w: triggers: %d (at most %d)", ErrInvalid, len(s.Triggers), MaxTriggers)
	}
	for i, t := range s.Triggers {
		switch t.Type {
		case TriggerNATS, TriggerJetStream, TriggerAMQP, TriggerMQTT, TriggerRedis:
			if len(t.Events) > 0 {
				return fmt.Errorf("%w: triggers[%d].events: only for type events", ErrInvalid, i)
			}
		case TriggerEvents:
			if len(t.Events) == 0 {
				return fmt.Errorf("%w: triggers[%d].events: name the platform events (%v, or \"*\")", ErrInvalid, i, PlatformEvents)
			}
			for _, e := range t.Events {
				if e != "*" && !slices.Contains(PlatformEvents, e) {
					return fmt.Errorf("%w: triggers[%d].events: %q is not one of %v (or \"*\")", ErrInvalid, i, e, PlatformEvents)
				}
			}
			if t.URL != "" || t.Subject != "" || t.Stream != "" || t.Queue != "" || t.Topic != "" || t.Group != "" {
				return fmt.Errorf("%w: triggers[%d]: type events takes events, batch_size, batch_window and concurrency only", ErrInvalid, i)
			}
		default:
			return fmt.Errorf("%w: triggers[%d].type: %q is not one of nats, jetstream, amqp, mqtt, redis, events", ErrInvalid, i, t.Type)
		}
	}
	return nil
}

// Redacted returns s with the passwords of trigger URLs replaced by
// "****", for API answers: a spec may carry a broker's credentials.
func (s Spec) Redacted() Spec {
	if len(s.Triggers) == 0 {
		return s
	}
	ts := slices.Clone(s.Triggers)
	for i := range ts {
		ts[i].URL = RedactURL(ts[i].URL)
	}
	s.Triggers = ts
	return s
}

// RedactURL replaces the secrets of a URL, or of each URL of a
// comma-separated list (NATS takes several servers), by "****": a password,
// or a user name that stands alone (a token, as in nats://TOKEN@host). A
// URL that does not parse is shown as "(unparsable URL)".
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, ",")
	for i, one := range parts {
		u, err := url.Parse(one)
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "****")
		} else {
			u.User = url.User("****")
		}
		parts[i] = strings.ReplaceAll(u.String(), "%2A%2A%2A%2A", "****")
	}
	return strings.Join(parts, ",")
}
