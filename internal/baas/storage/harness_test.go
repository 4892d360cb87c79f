package storage_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hostless/hostless/internal/baas/storage"
	blobfs "github.com/hostless/hostless/internal/blob/fs"
	"github.com/hostless/hostless/internal/store/sqlite"
)

const (
	testKeyID  = "AKIAHOSTLESSTEST0001"
	testSecret = "hostless-test-secret-0123456789abcdefghij"
	testRegion = "us-east-1"
)

var testCreds = aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}

func lookup(id string) (string, bool) { return testSecret, id == testKeyID }

// server is the S3 handler over a SQLite store and a blob directory, on a
// real listener, recording the payload mode of each request.
type server struct {
	*httptest.Server
	h        *storage.Handler
	db       *sqlite.DB
	blobsDir string
	blobs    *blobfs.Store
	pool     *x509.CertPool

	mu    sync.Mutex
	modes map[string]int // X-Amz-Content-Sha256 (or "presigned") of PUTs
	// skew moves the server's clock (expired presigned URLs).
	skew atomic.Int64
}

type serverOptions struct {
	tls            bool
	maxObjectBytes int64
	minPartBytes   int64
	// sync fsyncs each object (serve --data-sync-always); the default
	// writes survive kill -9, not power loss.
	sync bool
	// emit receives the platform events.
	emit func(name string, data []byte)
	// dir holds the database and the blobs (default t.TempDir()).
	dir string
}

func newServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := sqlite.OpenWith(context.Background(), filepath.Join(dir, "db"), sqlite.Options{DataSyncFull: o.sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs := blobfs.New(filepath.Join(dir, "objects"))
	if !o.sync {
		blobs.WithoutSync()
	}
	if err := blobs.Open(); err != nil {
		t.Fatal(err)
	}
	s := &server{db: db, blobsDir: filepath.Join(dir, "objects"), blobs: blobs, modes: map[string]int{}}
	s.h = storage.New(storage.Config{
		Objects: db, Blobs: blobs, Lookup: lookup,
		MaxObjectBytes: o.maxObjectBytes, MinPartBytes: o.minPartBytes, Emit: o.emit,
		Now: func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) },
	})
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mode := r.Header.Get("X-Amz-Content-Sha256")
			if r.URL.Query().Get("X-Amz-Signature") != "" {
				mode = "presigned"
			} else if len(mode) == 64 {
				mode = "signed"
			}
			s.mu.Lock()
			s.modes[mode]++
			s.mu.Unlock()
		}
		s.h.ServeHTTP(w, r)
	})
	s.Server = httptest.NewUnstartedServer(record)
	if o.tls {
		cert, pool := selfSigned(t)
		s.pool = pool
		s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) sawMode(mode string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modes[mode] > 0
}

// httpClient trusts the server's certificate.
func (s *server) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	if s.pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.pool}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// blobFiles counts the files under the blob directory: what is stored.
func (s *server) blobFiles(t testing.TB) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(s.blobsDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *server) awsClient(creds aws.Credentials) *s3.Client {
	return s3.New(s3.Options{
		Region:                     testRegion,
		Credentials:                aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:                 s.httpClient(),
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		RetryMaxAttempts:           1,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func (s *server) minioClient(t testing.TB, keyID, secret string) *minio.Client {
	t.Helper()
	u, _ := url.Parse(s.URL)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:      miniocreds.NewStaticV4(keyID, secret, ""),
		Region:     testRegion,
		Secure:     s.pool != nil,
		Transport:  s.httpClient().Transport,
		MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hostless s3 test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
