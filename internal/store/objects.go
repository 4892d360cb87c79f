package store

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"
)

// Errors of Objects, matched with errors.Is.
var (
	// ErrBucketExists: CreateBucket of a bucket that exists.
	ErrBucketExists = errors.New("bucket exists")
	// ErrBucketNotEmpty: DeleteBucket of a bucket that still holds objects
	// or multipart uploads.
	ErrBucketNotEmpty = errors.New("bucket is not empty")
	// ErrPartChanged: CompleteUpload named a part whose bytes were replaced
	// since the caller read it.
	ErrPartChanged = errors.New("part changed")
)

// MaxListObjects is the most rows ListObjects and ListParts return.
const MaxListObjects = 1000

// Bucket is a bucket of objects.
type Bucket struct {
	Project   string
	Name      string
	CreatedAt time.Time
}

// ObjectMeta is what an object carries besides its bytes.
type ObjectMeta struct {
	// ContentType is the object's Content-Type.
	ContentType string `json:"-"`
	// Metadata is the user metadata (x-amz-meta-NAME: value), by lower-case
	// NAME.
	Metadata map[string]string `json:"m,omitempty"`
	// Headers are the other stored response headers (Cache-Control,
	// Content-Disposition, Content-Encoding, Content-Language, Expires), by
	// canonical name.
	Headers map[string]string `json:"h,omitempty"`
}

// Object is an object's metadata; its bytes are the blob named BlobKey.
type Object struct {
	Project string
	Bucket  string
	Key     string
	Size    int64
	// ETag is the entity tag without quotes: the hex MD5 of the bytes, or
	// for a multipart upload the hex MD5 of the parts' binary MD5s, "-" and
	// the number of parts.
	ETag    string
	ModTime time.Time
	// BlobKey names the blob that holds the bytes; every write of an object
	// uses a new one.
	BlobKey string
	ObjectMeta
}

// ObjectFilter selects objects of a bucket, in byte order of their keys.
type ObjectFilter struct {
	Project, Bucket string
	// Prefix keeps the keys that start with it.
	Prefix string
	// After keeps the keys greater than it; From those at least it.
	After, From string
	// Limit is the most rows (1 to MaxListObjects; other values mean
	// MaxListObjects).
	Limit int
}

// Upload is a multipart upload in progress.
type Upload struct {
	Project   string
	Bucket    string
	ID        string
	Key       string
	CreatedAt time.Time
	ObjectMeta
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Project  string
	Bucket   string
	UploadID string
	Number   int
	Size     int64
	ETag     string // hex MD5, without quotes
	ModTime  time.Time
	BlobKey  string
}

// Objects stores the metadata of buckets, objects and multipart uploads.
// Bytes live in a blob store under the BlobKey of each object and part;
// methods that drop a row return the blob keys no row names any more, for
// the caller to delete after the change committed.
type Objects interface {
	// CreateBucket creates a bucket, or returns ErrBucketExists.
	CreateBucket(ctx context.Context, b Bucket) error
	// GetBucket returns a bucket, or ErrNotFound.
	GetBucket(ctx context.Context, project, name string) (Bucket, error)
	// ListBuckets returns a project's buckets by name.
	ListBuckets(ctx context.Context, project string) ([]Bucket, error)
	// DeleteBucket deletes an empty bucket; ErrNotFound, or
	// ErrBucketNotEmpty while it holds objects or uploads.
	DeleteBucket(ctx context.Context, project, name string) error

	// PutObject creates or replaces an object in one transaction and
	// returns the blob key of the object it replaced ("" if none), or
	// ErrNotFound without its bucket.
	PutObject(ctx context.Context, o Object) (replaced string, err error)
	// GetObject returns an object, or ErrNotFound.
	GetObject(ctx context.Context, project, bucket, key string) (Object, error)
	// DeleteObject deletes an object and returns its blob key, or
	// ErrNotFound.
	DeleteObject(ctx context.Context, project, bucket, key string) (blobKey string, err error)
	// ListObjects returns the objects f selects, by key.
	ListObjects(ctx context.Context, f ObjectFilter) ([]Object, error)

	// CreateUpload starts a multipart upload (ID set by the caller), or
	// returns ErrNotFound without its bucket.
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns an upload, or ErrNotFound.
	GetUpload(ctx context.Context, project, bucket, id string) (Upload, error)
	// PutPart creates or replaces a part and returns the blob key of the
	// part it replaced ("" if none), or ErrNotFound without its upload.
	PutPart(ctx context.Context, p Part) (replaced string, err error)
	// ListParts returns an upload's parts numbered above after, by number,
	// at most limit (1 to MaxListObjects).
	ListParts(ctx context.Context, project, bucket, uploadID string, after, limit int) ([]Part, error)
	// CompleteUpload, in one transaction, checks that each of used still
	// has its BlobKey (ErrPartChanged if not), puts o and deletes the
	// upload with its parts. It returns the blob keys of the replaced
	// object and of every part; ErrNotFound without the upload.
	CompleteUpload(ctx context.Context, uploadID string, used []Part, o Object) (obsolete []string, err error)
	// AbortUpload deletes an upload with its parts and returns the parts'
	// blob keys, or ErrNotFound.
	AbortUpload(ctx context.Context, project, bucket, uploadID string) (obsolete []string, err error)
}

// PrefixEnd returns the least valid UTF-8 string greater than every string
// that starts with prefix, for a range scan [prefix, end); ok is false when
// there is none (prefix is empty or all U+10FFFF). prefix must be valid
// UTF-8. UTF-8's byte order is its code point order, so the bound holds for
// byte-wise comparison (SQLite's BINARY, PostgreSQL's "C").
func PrefixEnd(prefix string) (end string, ok bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF:
			r = 0xE000 // skip the surrogates, which UTF-8 can't encode
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}
