// Command lambdafn is a Lambda function built with aws-lambda-go, unchanged
// from what runs on AWS: the process runtime's tests deploy it. It answers
// HTTP events (API Gateway payload 2.0) by path and raw events by "action".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

var count int

type raw struct {
	Action string `json:"action"`
	Arg    string `json:"arg"`
}

func handler(ctx context.Context, ev json.RawMessage) (any, error) {
	// A batch of broker messages: each body is logged; those saying "fail"
	// are reported failed (a partial batch response).
	var batch events.SQSEvent
	if json.Unmarshal(ev, &batch) == nil && len(batch.Records) > 0 {
		var resp events.SQSEventResponse
		for _, r := range batch.Records {
			fmt.Printf("record %s %s attempt=%s\n", r.MessageId, r.Body, r.Attributes["ApproximateReceiveCount"])
			if strings.Contains(r.Body, "fail") {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}
	var tick events.EventBridgeEvent
	if json.Unmarshal(ev, &tick) == nil && tick.DetailType == "Scheduled Event" {
		fmt.Printf("scheduled %s %s\n", tick.Source, tick.Time.UTC().Format(time.RFC3339))
		return "tick", nil
	}
	var req events.APIGatewayV2HTTPRequest
	_ = json.Unmarshal(ev, &req)
	var r raw
	_ = json.Unmarshal(ev, &r)
	action, arg := r.Action, r.Arg
	if req.RawPath != "" {
		action, arg = strings.TrimPrefix(req.RawPath, "/"), req.QueryStringParameters["arg"]
	}
	switch action {
	case "hello":
		fmt.Println("hello log line")
		fmt.Fprintln(os.Stderr, "hello on stderr")
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "text/plain", "X-Fn": "lambdafn"},
			Cookies: []string{"a=1; Path=/"}, Body: "hello " + req.QueryStringParameters["name"]}, nil
	case "echo":
		return req, nil
	case "count":
		count++
		return map[string]int{"count": count}, nil
	case "context":
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return map[string]any{
			"request_id": lc.AwsRequestID, "arn": lc.InvokedFunctionArn, "remaining_ms": time.Until(deadline).Milliseconds(),
			"function": lambdacontext.FunctionName, "version": lambdacontext.FunctionVersion, "memory": lambdacontext.MemoryLimitInMB,
			"env_region": os.Getenv("AWS_REGION"), "task_root": os.Getenv("LAMBDA_TASK_ROOT"), "handler": os.Getenv("_HANDLER"),
			"mine": os.Getenv("MINE"), "uid": os.Getuid(),
		}, nil
	case "fail":
		return nil, errors.New("it failed on purpose")
	case "sleep":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
		return "slept", nil
	case "alloc":
		var keep [][]byte
		for i := 0; i < 1024; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		return len(keep), nil
	case "exit":
		os.Exit(3)
	case "big":
		return strings.Repeat("x", 7<<20), nil
	case "read":
		b, err := os.ReadFile(arg)
		if err != nil {
			return "denied: " + err.Error(), nil
		}
		return "read " + fmt.Sprint(len(b)) + " bytes", nil
	case "write":
		if err := os.WriteFile(arg, []byte("x"), 0o644); err != nil {
			return "denied: " + err.Error(), nil
		}
		return "wrote", nil
	case "stream":
		// Lambda response streaming, as aws-lambda-go does it: the body is
		// read (and posted) as the function writes it.
		pr, pw := io.Pipe()
		go func() {
			for i := range 3 {
				fmt.Fprintf(pw, "chunk %d\n", i)
				time.Sleep(300 * time.Millisecond)
			}
			pw.Close()
		}()
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 201,
			Headers: map[string]string{"Content-Type": "text/plain"}, Body: pr}, nil
	case "s3":
		return s3Action(ctx, arg)
	case "trace":
		// The X-Ray trace header of this call, as aws-lambda-go sets it.
		return os.Getenv("_X_AMZN_TRACE_ID"), nil
	case "platform":
		// The platform's API through the instance's local endpoint, with
		// the token the call brought: GET arg (a /v1/... path).
		hr, err := http.NewRequestWithContext(ctx, "GET", os.Getenv("HOSTLESS_API_URL")+arg, nil)
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Authorization", "Bearer "+req.Headers["x-hostless-token"])
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			return "unreachable: " + err.Error(), nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		claims := map[string]string{}
		if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil {
			claims = a.JWT.Claims
		}
		return map[string]any{"status": res.StatusCode, "body": string(b), "claims": claims}, nil
	case "dial":
		c, err := net.DialTimeout("tcp", arg, time.Second)
		if err != nil {
			return "denied: " + err.Error(), nil
		}
		c.Close()
		return "connected", nil
	case "kill":
		if err := syscall.Kill(1, syscall.SIGKILL); err != nil {
			return "denied: " + err.Error(), nil
		}
		return "signalled", nil
	case "environs":
		// Every environment this process can read under /proc.
		var all []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil {
				all = append(all, string(b))
			}
		}
		return strings.Join(all, "\n"), nil
	case "forkbomb":
		started, failed := 0, 0
		for i := 0; i < 2000; i++ {
			p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{})
			if err != nil {
				failed++
				continue
			}
			_ = p.Release()
			started++
		}
		return map[string]int{"started": started, "failed": failed}, nil
	case "conns":
		// Holds many connections to the Runtime API for a moment.
		var conns []net.Conn
		for i := 0; i < 200; i++ {
			c, err := net.DialTimeout("tcp", os.Getenv("AWS_LAMBDA_RUNTIME_API"), 100*time.Millisecond)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		time.Sleep(500 * time.Millisecond)
		for _, c := range conns {
			c.Close()
		}
		return len(conns), nil
	case "procs":
		ents, _ := os.ReadDir("/proc")
		n := 0
		for _, e := range ents {
			if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
				n++
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("unknown action %q", action)
}

func main() { lambda.Start(handler) }

// s3Action runs one S3 call the way code written for AWS does, with the
// SDK configured from the environment alone (the credentials and
// AWS_ENDPOINT_URL_S3 the platform sets): arg is "list", "get BUCKET KEY"
// or "put BUCKET KEY BODY". It answers what the call returned, or the S3
// error code.
func s3Action(ctx context.Context, arg string) (any, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	c := s3.NewFromConfig(cfg)
	f := strings.SplitN(arg, " ", 4)
	code := func(err error) (any, error) {
		if ae, ok := errors.AsType[smithy.APIError](err); ok {
			return "error " + ae.ErrorCode(), nil
		}
		return "error " + err.Error(), nil
	}
	switch {
	case f[0] == "list":
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return code(err)
		}
		var names []string
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		return strings.Join(names, ","), nil
	case f[0] == "get" && len(f) == 3:
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &f[1], Key: &f[2]})
		if err != nil {
			return code(err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			return code(err)
		}
		return string(b), nil
	case f[0] == "put" && len(f) == 4:
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &f[1], Key: &f[2], Body: strings.NewReader(f[3])}); err != nil {
			return code(err)
		}
		return "put", nil
	}
	return nil, fmt.Errorf("s3: unknown %q", arg)
}
