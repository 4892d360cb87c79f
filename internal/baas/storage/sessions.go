package storage

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"sync"
)

// Access is what temporary credentials may do with one bucket.
type Access string

// The accesses a function's manifest grants on a bucket.
const (
	// AccessRead: GetObject, HeadObject, ListObjects(V2), HeadBucket,
	// GetBucketLocation, ListParts, and being the source of a copy.
	AccessRead Access = "read"
	// AccessWrite: PutObject, CopyObject (into the bucket), DeleteObject(s)
	// and the multipart upload calls.
	AccessWrite Access = "write"
	// AccessReadWrite: both.
	AccessReadWrite Access = "read-write"
)

// ParseAccess checks an access's name.
func ParseAccess(s string) (Access, error) {
	switch a := Access(s); a {
	case AccessRead, AccessWrite, AccessReadWrite:
		return a, nil
	}
	return "", fmt.Errorf("access %q must be read, write or read-write", s)
}

func (a Access) allows(need Access) bool {
	return a == need || a == AccessReadWrite
}

// Credentials are temporary credentials, as AWS's STS hands them out: an
// access key pair and the session token that goes with it.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// session is the grant behind temporary credentials.
type session struct {
	secret, token string
	grants        map[string]Access // by bucket
}

// sessions are the live temporary credentials of a Handler.
type sessions struct {
	mu sync.RWMutex
	m  map[string]*session // by access key ID
}

// Issue makes temporary credentials that may do what grants say (by bucket
// name) with the handler's project's buckets, and nothing else: no other
// bucket, no bucket's creation or deletion, and only the buckets named in
// ListBuckets. They are valid on this handler (this node) until revoke is
// called: a function instance's credentials live as long as the instance.
func (h *Handler) Issue(grants map[string]Access) (creds Credentials, revoke func()) {
	var id [10]byte
	var secret [30]byte
	var token [48]byte
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(secret[:])
	_, _ = rand.Read(token[:])
	creds = Credentials{
		// "ASIA" and 16 base-32 characters, the shape of AWS's temporary
		// access key IDs.
		AccessKeyID:     "ASIA" + base32.StdEncoding.EncodeToString(id[:]),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret[:]),
		SessionToken:    base64.StdEncoding.EncodeToString(token[:]),
	}
	s := &session{secret: creds.SecretAccessKey, token: creds.SessionToken, grants: maps.Clone(grants)}
	h.sessions.mu.Lock()
	if h.sessions.m == nil {
		h.sessions.m = map[string]*session{}
	}
	h.sessions.m[creds.AccessKeyID] = s
	h.sessions.mu.Unlock()
	var once sync.Once
	return creds, func() {
		once.Do(func() {
			h.sessions.mu.Lock()
			delete(h.sessions.m, creds.AccessKeyID)
			h.sessions.mu.Unlock()
		})
	}
}

// lookup is the verifier's LookupSession.
func (s *sessions) lookup(accessKeyID, token string) (string, any, bool) {
	s.mu.RLock()
	ss := s.m[accessKeyID]
	s.mu.RUnlock()
	if ss == nil || subtle.ConstantTimeCompare([]byte(token), []byte(ss.token)) != 1 {
		return "", nil, false
	}
	return ss.secret, ss, true
}

// session returns the grant of a request signed with temporary
// credentials; nil for the platform's own keys, which may do everything.
func (req *request) session() *session {
	if req.auth == nil {
		return nil
	}
	s, _ := req.auth.Session.(*session)
	return s
}

// need refuses the request unless its credentials may do need with
// bucket.
func (req *request) need(bucket string, need Access) error {
	if a, _ := req.session().grant(bucket); !a.allows(need) {
		return errAccessDenied
	}
	return nil
}

// authorize checks what temporary credentials ask for against their
// grant, before anything is read or written: a bucket's creation or
// deletion is never granted; reads and writes of a bucket's objects are
// per bucket. A copy's source is checked where it is parsed.
func (req *request) authorize() error {
	if req.session() == nil || req.bucket == "" {
		return nil // ListBuckets lists the granted buckets only
	}
	method := req.r.Method
	if !req.hasKey || req.key == "" {
		switch method {
		case http.MethodGet, http.MethodHead:
			return req.need(req.bucket, AccessRead)
		case http.MethodPost:
			return req.need(req.bucket, AccessWrite)
		}
		return errAccessDenied
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return req.need(req.bucket, AccessRead)
	}
	return req.need(req.bucket, AccessWrite)
}

// grant returns what s grants on bucket; a nil session (a long-term
// key's) is granted everything.
func (s *session) grant(bucket string) (Access, bool) {
	if s == nil {
		return AccessReadWrite, true
	}
	a, ok := s.grants[bucket]
	return a, ok
}
