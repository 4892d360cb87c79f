package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/hostless/hostless/internal/function"
)

var (
	_ function.Instance = (*sdkInstance)(nil)
	_ function.Instance = (*cgiInstance)(nil)
)

// minGuestBuffer is the least request buffer asked of a guest. The guest
// keeps its buffer (a global) between calls, and Go's collector doesn't move
// objects, so the pointer stays valid until the next hostless_buffer call.
const minGuestBuffer = 16 << 10

// sdkInstance is a warm reactor built with the Go SDK. One goroutine uses
// it at a time.
type sdkInstance struct {
	mod            api.Module
	buffer, handle api.Function
	mem            api.Memory
	stdout, stderr *lineWriter
	sleep          *sleeper
	stack          []uint64
	enc            []byte
	bufPtr, bufCap uint32 // the guest's request buffer, kept by the guest across calls
	limitPages     uint32
	recycleAt      uint64
	maxOut         int
	broken         bool
	release        func() // drops the instance's reference to its code
	// out is the state of outbound HTTP calls, given to the host function
	// through the call's context; nil when the version allows no host.
	out *outbound
}

func (r *Runtime) startSDK(ctx context.Context, rt wazero.Runtime, c *code, v *function.Version, base wazero.ModuleConfig) (*sdkInstance, error) {
	i := &sdkInstance{
		stdout:     &lineWriter{stream: "stdout"},
		stderr:     &lineWriter{stream: "stderr"},
		sleep:      &sleeper{},
		stack:      make([]uint64, 1),
		limitPages: c.key.pages,
		recycleAt:  uint64(float64(uint64(c.key.pages)*65536) * DefaultRecycleFraction),
		maxOut:     r.cfg.MaxResponseBytes,
	}
	if len(v.Spec.AllowedHosts) > 0 || r.cfg.Platform != nil {
		i.out = &outbound{allowed: parseAllowedHosts(v.Spec.AllowedHosts)}
	}
	i.sleep.set(ctx.Done())
	cfg := base.WithStartFunctions("_initialize").WithStdout(i.stdout).WithStderr(i.stderr).WithNanosleep(i.sleep.sleep)
	mod, err := rt.InstantiateModule(ctx, c.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("start instance: %w", classify(ctx, err, nil, 0, i.stderr.sawOOM))
	}
	i.mod = mod
	i.buffer = mod.ExportedFunction("hostless_buffer")
	i.handle = mod.ExportedFunction("hostless_handle")
	i.mem = mod.Memory()
	if i.buffer == nil || i.handle == nil || i.mem == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: module lacks the SDK exports or memory", function.ErrInvalid)
	}
	return i, nil
}

// Invoke runs one request through hostless_handle.
func (i *sdkInstance) Invoke(ctx context.Context, req *function.Request, logs function.Logs) (*function.Response, error) {
	b, err := i.call(ctx, req, logs)
	if err != nil {
		return nil, err
	}
	resp, err := decodeResponse(b)
	if err != nil {
		i.broken = true
		return nil, fmt.Errorf("%w: %v", function.ErrFunction, err)
	}
	if err := finalStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// call runs one request through hostless_handle and returns the encoded
// response the guest returned, in guest memory: valid until the next call.
func (i *sdkInstance) call(ctx context.Context, req *function.Request, logs function.Logs) ([]byte, error) {
	if i.broken {
		return nil, errors.New("instance is not reusable")
	}
	i.stdout.logs, i.stderr.logs = logs, logs
	i.stderr.sawOOM = false
	if i.out != nil {
		// Without allowed hosts or a platform, the host function finds no
		// state and refuses every call: an invocation pays nothing for it.
		i.out.logs, i.out.pending, i.out.depth = logs, nil, function.CallDepth(req.Header)
		defer func() { i.out.logs, i.out.pending = nil, nil }()
		ctx = withOutbound(ctx, i.out)
	}
	i.sleep.set(ctx.Done())
	defer func() {
		i.stdout.flush()
		i.stderr.flush()
		i.stdout.logs, i.stderr.logs = nil, nil
	}()
	i.enc = encodeRequest(i.enc[:0], req)
	n := uint64(len(i.enc))
	if n > uint64(i.bufCap) {
		// Ask for room to spare: most requests then skip this call.
		size := max(n, minGuestBuffer)
		i.stack[0] = size
		if err := i.buffer.CallWithStack(ctx, i.stack); err != nil {
			return nil, i.fail(ctx, err)
		}
		i.bufPtr, i.bufCap = uint32(i.stack[0]), uint32(size)
	}
	if !i.mem.Write(i.bufPtr, i.enc) {
		i.broken = true
		return nil, fmt.Errorf("%w: guest buffer out of bounds", function.ErrFunction)
	}
	i.stack[0] = n
	if err := i.handle.CallWithStack(ctx, i.stack); err != nil {
		return nil, i.fail(ctx, err)
	}
	ptr, size := uint32(i.stack[0]>>32), uint32(i.stack[0])
	if uint64(i.mem.Size()) > i.recycleAt {
		i.broken = true // linear memory never shrinks: start afresh next time
	}
	if int64(size) > int64(i.maxOut) {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", function.ErrResponseTooLarge, size, i.maxOut)
	}
	b, ok := i.mem.Read(ptr, size)
	if !ok {
		i.broken = true
		return nil, fmt.Errorf("%w: response out of bounds", function.ErrFunction)
	}
	return b, nil
}

func (i *sdkInstance) fail(ctx context.Context, err error) error {
	i.broken = true
	return classify(ctx, err, i.mem, i.limitPages, i.stderr.sawOOM)
}

// Reusable reports whether the instance may serve again.
func (i *sdkInstance) Reusable() bool { return !i.broken }

// Close closes the module.
func (i *sdkInstance) Close(ctx context.Context) error {
	i.broken = true
	err := i.mod.Close(ctx)
	i.release()
	return err
}

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func appendStr(b []byte, s string) []byte { return append(appendU32(b, uint32(len(s))), s...) }

// encodeRequest encodes req in the SDK's ABI (see sdk/go).
func encodeRequest(b []byte, req *function.Request) []byte {
	b = appendStr(b, req.Method)
	b = appendStr(b, req.Path)
	b = appendStr(b, req.RawQuery)
	b = appendStr(b, req.Host)
	b = appendStr(b, req.RemoteAddr)
	n := 0
	for _, vs := range req.Header {
		n += len(vs)
	}
	b = appendU32(b, uint32(n))
	for k, vs := range req.Header {
		for _, v := range vs {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	b = appendU32(b, uint32(len(req.Body)))
	b = append(b, req.Body...)
	if len(req.PathParams) == 0 {
		return b // what a guest built before path parameters expects
	}
	b = appendU32(b, uint32(len(req.PathParams)))
	for k, v := range req.PathParams {
		b = appendStr(b, k)
		b = appendStr(b, v)
	}
	return b
}

var errTruncated = errors.New("malformed SDK response: truncated")

// abiReader reads the little-endian, length-prefixed fields of the SDK's
// ABI (responses, and outbound requests) from guest memory.
type abiReader struct{ b []byte }

func (r *abiReader) u32() (uint32, bool) {
	if len(r.b) < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, true
}

// field reads a length and that many bytes.
func (r *abiReader) field() ([]byte, bool) {
	n, ok := r.u32()
	if !ok || uint64(n) > uint64(len(r.b)) {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

// pairs reads a count of header pairs, refusing one that what is left
// can't hold (8 bytes of lengths each at least).
func (r *abiReader) pairs() (uint32, bool) {
	n, ok := r.u32()
	return n, ok && uint64(n)*8 <= uint64(len(r.b))
}

// decodeResponse decodes a response from guest memory, copying what it keeps.
func decodeResponse(b []byte) (*function.Response, error) {
	r := &abiReader{b: b}
	u32, bytesField := r.u32, r.field
	status, ok := u32()
	if !ok {
		return nil, errTruncated
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("malformed SDK response: status %d", status)
	}
	n, ok := r.pairs()
	if !ok {
		return nil, errTruncated
	}
	h := make(http.Header, n)
	for range n {
		k, ok1 := bytesField()
		v, ok2 := bytesField()
		if !ok1 || !ok2 {
			return nil, errTruncated
		}
		if !validHeader(k, v) {
			return nil, fmt.Errorf("malformed SDK response: invalid header %q", k)
		}
		key := http.CanonicalHeaderKey(string(k))
		h[key] = append(h[key], string(v))
	}
	body, ok := bytesField()
	if !ok {
		return nil, errTruncated
	}
	return &function.Response{Status: int(status), Header: h, Body: append([]byte(nil), body...)}, nil
}

// validHeader rejects names that are not tokens and values with control
// characters, so a function cannot split the platform's response.
func validHeader(k, v []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
