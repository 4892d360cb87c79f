package natsobj_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/blob/blobtest"
	"github.com/hostless/hostless/internal/blob/natsobj"
)

// cluster starts three JetStream servers in one cluster, in this process,
// and returns their client URLs once JetStream has a leader.
func cluster(t *testing.T) []string {
	t.Helper()
	const n = 3
	// Routes need the cluster ports up front: borrow free ones.
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	var urls []string
	for i := range n {
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %d not ready", i)
		}
		urls = append(urls, srv.ClientURL())
	}
	// JetStream answers once the cluster has elected its meta leader.
	nc := connectURL(t, urls[0])
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return urls
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream in the cluster: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func connectURL(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestCluster runs the suite on three replicas, where reads go to the
// stream leader, and checks that a blob put through one server is at once
// readable through another.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	t.Parallel()
	urls := cluster(t)
	js := make([]jetstream.JetStream, len(urls))
	for i, u := range urls {
		js[i], _ = jetstream.New(connectURL(t, u))
	}
	cfg := natsobj.Config{Replicas: 3}
	t.Run("Conformance", func(t *testing.T) {
		blobtest.Run(t, func(t *testing.T) blob.Store {
			s, _ := open(t, js[0], cfg)
			return s
		})
	})
	t.Run("ExistingBucketLosesDirectGets", func(t *testing.T) {
		ctx := context.Background()
		bucket := uniqueBucket(t, js[0])
		if _, err := js[0].CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket, Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		if err := natsobj.New(js[1], natsobj.Config{Bucket: bucket}).Open(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := js[0].Stream(ctx, "OBJ_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if c := st.CachedInfo().Config; c.Replicas != 3 || c.AllowDirect {
			t.Errorf("after Open: replicas %d, direct gets %v; want 3 and off", c.Replicas, c.AllowDirect)
		}
	})
	t.Run("ReadYourWritesAcrossServers", func(t *testing.T) {
		s0, bucket := open(t, js[0], cfg)
		s2 := natsobj.New(js[2], natsobj.Config{Bucket: bucket, Replicas: 3})
		if err := s2.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range 50 {
			key, value := fmt.Sprintf("k%d", i%5), fmt.Sprintf("value %d", i)
			if _, err := s0.Put(ctx, key, strings.NewReader(value)); err != nil {
				t.Fatal(err)
			}
			rc, _, err := s2.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get through another server right after Put: %v", err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != value {
				t.Fatalf("Get through another server = %q, %v; want %q", b, err, value)
			}
			if i%5 == 4 {
				if err := s2.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				if _, err := s0.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
					t.Fatalf("Stat through the first server after Delete through another: %v", err)
				}
			}
		}
	})
}
