package scheduler

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hostless/hostless/internal/function"
)

// The per-IP table stays bounded however many clients call: full buckets
// go first, then arbitrary ones.
func TestPerIPTableIsBounded(t *testing.T) {
	t.Parallel()
	r := function.RateLimit{PerIPRPS: 0.001, PerIPBurst: 2}
	p := &pool{version: &function.Version{Function: "f"}, perIP: map[string]*rate.Limiter{}}
	for i := range 3 * maxClients {
		if err := p.allowClient(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), r); err != nil {
			t.Fatalf("a new client's first call was refused: %v", err)
		}
		if n := len(p.perIP); n > maxClients {
			t.Fatalf("%d clients in the table, more than %d", n, maxClients)
		}
	}
	// A client still in the table keeps its bucket: past its burst, refused.
	var known string
	for ip := range p.perIP {
		known = ip
		break
	}
	p.perIP[known].AllowN(time.Now(), 1)
	if err := p.allowClient(known, r); function.ThrottleReason(err) != function.ThrottleRateIP {
		t.Errorf("a known client past its burst of 2: %v, want rate_ip", err)
	}
}
