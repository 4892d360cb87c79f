package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// The aws-chunked encoding (Content-Encoding: aws-chunked) as S3 defines
// it. Signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]):
//
//	<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n ... 0;chunk-signature=<64 hex>\r\n
//	then \r\n, or the trailer: name:value\r\n ... x-amz-trailer-signature:<64 hex>\r\n\r\n
//
// Unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER):
//
//	<hex size>\r\n<data>\r\n ... 0\r\n name:value\r\n ... \r\n
//
// Each chunk's signature signs the previous one (the request's signature
// for the first), so chunks can be neither altered, dropped nor reordered.

const (
	maxChunkLine    = 4096 // a chunk header or trailer line
	maxTrailerLines = 16
	maxDeclared     = 8 // names in X-Amz-Trailer
)

// The CRC-64/NVME table: reflected polynomial 0x9a6c9329ac4bc9b5, which
// hash/crc64's pre- and post-inversion make the NVMe CRC that S3 uses.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var crc32C = crc32.MakeTable(crc32.Castagnoli)

// newChecksum returns the hash of a trailing checksum header, or nil for a
// name that is not a checksum this package knows.
func newChecksum(name string) hash.Hash {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32C)
	case "x-amz-checksum-crc64nvme":
		return crc64.New(crc64NVME)
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}

type checksum struct {
	name string // lower case
	h    hash.Hash
}

// chunkedReader decodes an aws-chunked body, verifying chunk signatures
// (signed modes), X-Amz-Decoded-Content-Length and trailing checksums. A
// signed chunk is held until its signature is checked, so no byte of a
// chunk is returned before it is verified. All errors are sticky.
type chunkedReader struct {
	src    io.ReadCloser
	br     *bufio.Reader
	signed bool // chunk signatures
	// trailer says the final chunk is followed by trailing headers.
	withTrailer bool
	maxChunk    int

	// For signed modes: the key, the string-to-sign prefix and the
	// previous signature.
	key     [32]byte
	prefix  string // date\nscope\n
	prevSig string

	buf       []byte // signed: the current verified chunk
	off       int
	remaining int64 // unsigned: bytes left in the current chunk

	total      int64
	decodedLen int64 // -1 if unknown
	checks     []checksum
	declared   []string
	trailer    http.Header
	done       bool
	err        error
}

func (v *Verifier) newChunkedReader(r *http.Request, mode Payload, key [32]byte, amzDate, scope, seedSig string) (*chunkedReader, error) {
	decodedLen := int64(-1)
	if s := r.Header.Get("X-Amz-Decoded-Content-Length"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, errorf(ErrInvalidArgument, "X-Amz-Decoded-Content-Length must be a non-negative integer")
		}
		decodedLen = n
	}
	var declared []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if len(declared) == maxDeclared {
				return nil, errorf(ErrInvalidArgument, "X-Amz-Trailer names more than %d trailers", maxDeclared)
			}
			declared = append(declared, name)
		}
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	return newChunked(body, mode, v.maxChunk(), decodedLen, declared, key, amzDate, scope, seedSig), nil
}

func newChunked(body io.ReadCloser, mode Payload, maxChunk int, decodedLen int64, declared []string, key [32]byte, amzDate, scope, seedSig string) *chunkedReader {
	cr := &chunkedReader{
		src:         body,
		br:          bufio.NewReaderSize(body, maxChunkLine),
		signed:      mode == PayloadStreaming || mode == PayloadStreamingTrailer,
		withTrailer: mode != PayloadStreaming,
		maxChunk:    maxChunk,
		key:         key,
		prefix:      amzDate + "\n" + scope + "\n",
		prevSig:     seedSig,
		decodedLen:  decodedLen,
		declared:    declared,
	}
	for _, name := range declared {
		if h := newChecksum(name); h != nil {
			cr.checks = append(cr.checks, checksum{name, h})
		}
	}
	return cr
}

func (c *chunkedReader) finished() bool { return c.done && c.err == io.EOF }

func (c *chunkedReader) Close() error { return c.src.Close() }

func (c *chunkedReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		if c.signed && c.off < len(c.buf) {
			n := copy(p, c.buf[c.off:])
			c.off += n
			return n, nil
		}
		if !c.signed && c.remaining > 0 {
			return c.readUnsigned(p)
		}
		if c.done {
			c.err = io.EOF
			continue
		}
		if err := c.next(); err != nil {
			c.err = err
		}
	}
}

// readUnsigned passes through data of the current unsigned chunk.
func (c *chunkedReader) readUnsigned(p []byte) (int, error) {
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	c.remaining -= int64(n)
	for _, ck := range c.checks {
		ck.h.Write(p[:n])
	}
	if c.remaining == 0 && err == nil {
		err = c.crlf()
	}
	if err != nil {
		c.err = c.bodyErr(err)
		if n == 0 {
			return 0, c.err
		}
	}
	return n, nil
}

// bodyErr turns the end of the body into ErrIncompleteBody and keeps other
// errors of the underlying reader (a closed connection, a size limit) as
// they are.
func (c *chunkedReader) bodyErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(ErrIncompleteBody, "the body ended inside the aws-chunked encoding after %d decoded bytes", c.total)
	}
	return err
}

// crlf reads the \r\n that ends a chunk's data.
func (c *chunkedReader) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return c.bodyErr(err)
	}
	if b != [2]byte{'\r', '\n'} {
		return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: a chunk's data is not followed by CRLF (is the chunk size right?)")
	}
	return nil
}

// line reads one line, without its \n or \r\n, at most maxChunkLine long.
func (c *chunkedReader) line() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", errorf(ErrMalformedChunk, "the aws-chunked body is malformed: a line is longer than %d bytes", maxChunkLine)
	}
	if err != nil {
		return "", c.bodyErr(err)
	}
	b = b[:len(b)-1]
	b = bytes.TrimSuffix(b, []byte{'\r'})
	return string(b), nil
}

// next reads the next chunk header and, for a signed chunk, its data.
func (c *chunkedReader) next() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	sizeStr, ext, _ := strings.Cut(line, ";")
	if sizeStr == "" || len(sizeStr) > 16 {
		return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: bad chunk size")
	}
	size, err := strconv.ParseUint(sizeStr, 16, 64)
	if err != nil {
		return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: bad chunk size")
	}
	if size > uint64(c.maxChunk) {
		return errorf(ErrChunkTooLarge, "an aws-chunked chunk of %d bytes is over the %d bytes accepted", size, c.maxChunk)
	}
	if c.decodedLen >= 0 && c.total+int64(size) > c.decodedLen {
		return errorf(ErrIncompleteBody, "the aws-chunked body holds more than its X-Amz-Decoded-Content-Length of %d bytes", c.decodedLen)
	}
	var sig [32]byte
	if c.signed {
		v, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: a chunk has no chunk-signature")
		}
		if sig, err = parseSignature(v, ErrMalformedChunk); err != nil {
			return err
		}
	}
	c.total += int64(size)

	if !c.signed {
		if size > 0 {
			c.remaining = int64(size)
			return nil
		}
		return c.final()
	}

	if cap(c.buf) < int(size) {
		c.buf = make([]byte, size)
	}
	c.buf, c.off = c.buf[:size], 0
	if _, err := io.ReadFull(c.br, c.buf); err != nil {
		c.buf = c.buf[:0]
		return c.bodyErr(err)
	}
	sum := sha256.Sum256(c.buf)
	if err := c.verify("AWS4-HMAC-SHA256-PAYLOAD\n", emptySHA256+"\n"+hex.EncodeToString(sum[:]), sig); err != nil {
		c.buf = c.buf[:0]
		return err
	}
	for _, ck := range c.checks {
		ck.h.Write(c.buf)
	}
	if size > 0 {
		return c.crlf()
	}
	return c.final()
}

// verify checks the signature of a chunk or trailer whose string to sign
// is kind, the date and scope, the previous signature, then tail.
func (c *chunkedReader) verify(kind, tail string, sig [32]byte) error {
	sts := kind + c.prefix + c.prevSig + "\n" + tail
	want := hmacSHA256(c.key[:], []byte(sts))
	if !hmac.Equal(want[:], sig[:]) {
		return errorf(ErrSignatureDoesNotMatch, "the signature of the aws-chunked chunk ending at decoded byte %d does not match", c.total)
	}
	c.prevSig = hex.EncodeToString(sig[:])
	return nil
}

// final reads what follows the final, empty chunk: the end of the body or
// the trailer, then checks lengths and checksums.
func (c *chunkedReader) final() error {
	if c.withTrailer {
		if err := c.readTrailer(); err != nil {
			return err
		}
	} else {
		line, err := c.line()
		if err != nil {
			return err
		}
		if line != "" {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: the final chunk is not followed by an empty line")
		}
	}
	if err := c.end(); err != nil {
		return err
	}
	if c.decodedLen >= 0 && c.total != c.decodedLen {
		return errorf(ErrIncompleteBody, "the aws-chunked body holds %d bytes; its X-Amz-Decoded-Content-Length says %d", c.total, c.decodedLen)
	}
	for _, name := range c.declared {
		if c.trailer.Get(name) == "" {
			return errorf(ErrIncompleteBody, "the trailer %s named in X-Amz-Trailer is missing", show(name))
		}
	}
	for _, ck := range c.checks {
		got := c.trailer.Get(ck.name)
		if got != base64.StdEncoding.EncodeToString(ck.h.Sum(nil)) {
			return errorf(ErrBadDigest, "the %s you specified did not match the calculated checksum", strings.TrimPrefix(ck.name, "x-amz-checksum-"))
		}
	}
	c.done = true
	return nil
}

// end checks that the body ends after the final chunk or trailer. It
// tolerates a few extra empty lines: minio-go ends an unsigned trailer
// with \n\r\n\r\n.
func (c *chunkedReader) end() error {
	for range 3 {
		b, err := c.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b == '\r' {
			b, err = c.br.ReadByte()
			if err != nil && err != io.EOF {
				return err
			}
		}
		if b != '\n' {
			break
		}
	}
	return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: data follows the final chunk")
}

// readTrailer reads name:value lines up to the empty line that ends the
// body; in signed mode the last one must be x-amz-trailer-signature, which
// signs the others. minio-go ends each trailer line with \n and writes
// \r\n before the signature line, so empty lines before the signature are
// skipped.
func (c *chunkedReader) readTrailer() error {
	c.trailer = make(http.Header)
	var canon strings.Builder
	signed := false
	for i := 0; ; i++ {
		if i == maxTrailerLines {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: the trailer has more than %d lines", maxTrailerLines)
		}
		line, err := c.line()
		if err != nil {
			return err
		}
		if line == "" {
			if c.signed && !signed {
				continue
			}
			break
		}
		if signed {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: trailer lines follow x-amz-trailer-signature")
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if !ok || !isHeaderName(name) {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: a trailer line is not name:value")
		}
		if name == "x-amz-trailer-signature" {
			if !c.signed {
				return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: an unsigned trailer carries x-amz-trailer-signature")
			}
			sig, err := parseSignature(value, ErrMalformedChunk)
			if err != nil {
				return err
			}
			sum := sha256.Sum256([]byte(canon.String()))
			if err := c.verify("AWS4-HMAC-SHA256-TRAILER\n", hex.EncodeToString(sum[:]), sig); err != nil {
				return errorf(ErrSignatureDoesNotMatch, "the signature of the aws-chunked trailer does not match")
			}
			signed = true
			continue
		}
		if !c.isDeclared(name) {
			return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: the trailer %s is not named in X-Amz-Trailer", show(name))
		}
		c.trailer.Add(textproto.CanonicalMIMEHeaderKey(name), value)
		canon.WriteString(name + ":" + value + "\n")
	}
	if c.signed && !signed {
		return errorf(ErrMalformedChunk, "the aws-chunked body is malformed: the trailer has no x-amz-trailer-signature")
	}
	return nil
}

func (c *chunkedReader) isDeclared(name string) bool {
	for _, d := range c.declared {
		if d == name {
			return true
		}
	}
	return false
}
