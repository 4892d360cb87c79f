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

// PlatformEvents are the events the platform publishes on its bus; the
// document database adds db.{collection}.{created,updated,deleted}.
var PlatformEvents = []string{"function.deployed", "function.deleted", "invocation.failed",
	"auth.user.created", "auth.user.verified", "auth.user.disabled", "auth.user.enabled", "auth.password.reset",
	"auth.token.reused", "auth.key.created", "auth.key.deleted", "auth.identity.linked",
	"storage.object.created", "storage.object.deleted"}

// eventDomains are the first parts of platform event names.
var eventDomains = []string{"function", "invocation", "auth", "db", "storage"}

// ValidEvent reports whether an events trigger may name e: "*" (every
// event), or dot-separated parts of lower-case letters, digits, '_' and
// '-' where a part may be "*" (any one part) and the last ">" (the rest),
// starting with function, invocation, auth, db or storage:
// "db.todos.created", "db.*.deleted", "auth.>", "storage.object.created".
func ValidEvent(e string) bool {
	if e == "*" {
		return true
	}
	if len(e) > 200 {
		return false
	}
	parts := strings.Split(e, ".")
	if len(parts) < 2 || !slices.Contains(eventDomains, parts[0]) {
		return false
	}
	for i, p := range parts[1:] {
		if p == "*" || p == ">" && i == len(parts)-2 {
			continue
		}
		if p == "" {
			return false
		}
		for j := 0; j < len(p); j++ {
			if c := p[j]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

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
				if !ValidEvent(e) {
					return fmt.Errorf("%w: triggers[%d].events: %q is not a platform event such as %v, db.COLLECTION.created|updated|deleted, a pattern such as db.*.created or auth.>, or \"*\"", ErrInvalid, i, Short(e), PlatformEvents[:3])
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
