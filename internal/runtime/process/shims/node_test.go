package shims

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestNodeHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    map[string]string
		handler string
		event   string
		want    string
	}{
		{
			name:    "cjs callback",
			code:    map[string]string{"index.js": `exports.handler = (event, context, callback) => { callback(null, {hello: event.name}); };`},
			handler: "index.handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada"}`,
		},
		{
			name:    "cjs async",
			code:    map[string]string{"index.js": `exports.handler = async (event) => { await new Promise(r => setTimeout(r, 5)); return {hello: event.name}; };`},
			handler: "index.handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada"}`,
		},
		{
			name:    "cjs promise without async",
			code:    map[string]string{"index.js": `exports.handler = (event) => Promise.resolve({hello: event.name});`},
			handler: "index.handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada"}`,
		},
		{
			name:    "esm mjs async",
			code:    map[string]string{"index.mjs": `export const handler = async (event) => ({hello: event.name, esm: typeof require === 'undefined'});`},
			handler: "index.handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada","esm":true}`,
		},
		{
			name: "esm js in a type module package",
			code: map[string]string{
				"package.json": `{"type":"module"}`,
				"app.js":       `import { greet } from './lib/greet.js'; export async function handler(event) { return greet(event.name); }`,
				"lib/greet.js": `export const greet = (n) => ({hello: n, esm: typeof require === 'undefined'});`,
			},
			handler: "app.handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada","esm":true}`,
		},
		{
			name:    "cjs file",
			code:    map[string]string{"index.cjs": `module.exports.handler = async () => "from cjs";`},
			handler: "index.handler",
			event:   `{}`,
			want:    `"from cjs"`,
		},
		{
			name: "nested path and nested property",
			code: map[string]string{
				"src/app.js":  `const util = require('./util'); exports.api = { v1: { handler: async (e) => util.wrap(e.n) } };`,
				"src/util.js": `exports.wrap = (n) => ({n: n * 2});`,
			},
			handler: "src/app.api.v1.handler",
			event:   `{"n":21}`,
			want:    `{"n":42}`,
		},
		{
			name:    "package under node_modules",
			code:    map[string]string{"node_modules/greeter/index.js": `exports.handler = async () => "from a package";`},
			handler: "greeter.handler",
			event:   `{}`,
			want:    `"from a package"`,
		},
		{
			name:    "sync return without callback",
			code:    map[string]string{"index.js": `exports.handler = (event) => ({sync: event.n + 1});`},
			handler: "index.handler",
			event:   `{"n":1}`,
			want:    `{"sync":2}`,
		},
		{
			name:    "sync handler that never answers gets null",
			code:    map[string]string{"index.js": `exports.handler = (event, context, callback) => { setTimeout(() => {}, 5); };`},
			handler: "index.handler",
			event:   `{}`,
			want:    `null`,
		},
		{
			name:    "context.succeed",
			code:    map[string]string{"index.js": `exports.handler = function (event, context) { context.succeed({via: "succeed"}); };`},
			handler: "index.handler",
			event:   `{}`,
			want:    `{"via":"succeed"}`,
		},
		{
			name:    "context.done",
			code:    map[string]string{"index.js": `exports.handler = function (event, context) { context.done(null, {via: "done"}); context.done(null, "ignored"); };`},
			handler: "index.handler",
			event:   `{}`,
			want:    `{"via":"done"}`,
		},
		{
			name:    "undefined is null",
			code:    map[string]string{"index.js": `exports.handler = async () => undefined;`},
			handler: "index.handler",
			event:   `{}`,
			want:    `null`,
		},
		{
			name:    "env, cwd and trace ID",
			code:    map[string]string{"index.js": `exports.handler = async () => ({cwd: process.cwd() === process.env.LAMBDA_TASK_ROOT, region: process.env.AWS_REGION, trace: process.env._X_AMZN_TRACE_ID});`},
			handler: "index.handler",
			event:   `{}`,
			want:    `{"cwd":true,"region":"us-east-1","trace":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, NodeJS, tt.code)
			api := newFakeAPI(t)
			api.Invoke(tt.event)
			inst := start(t, s, shimDir, api, root, tt.handler)
			o := api.Outcome(inst)
			if o.Kind != "response" {
				t.Fatalf("got %s %s, want a response", o.Kind, o.Body)
			}
			if !jsonEqual(t, o.Body, tt.want) {
				t.Errorf("response %s, want %s", o.Body, tt.want)
			}
		})
	}
}

func TestNodeContext(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": `
exports.handler = async (event, context) => {
  const r1 = context.getRemainingTimeInMillis();
  await new Promise(r => setTimeout(r, 20));
  const r2 = context.getRemainingTimeInMillis();
  return {
    awsRequestId: context.awsRequestId, functionName: context.functionName,
    functionVersion: context.functionVersion, invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB, logGroupName: context.logGroupName,
    logStreamName: context.logStreamName, callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    clientContext: context.clientContext, identity: context.identity,
    fns: [typeof context.done, typeof context.succeed, typeof context.fail], r1, r2,
  };
};`})
	api := newFakeAPI(t)
	id := api.InvokeEvent(event{Body: `{}`, Deadline: time.Now().Add(30 * time.Second),
		ClientContext: `{"custom":{"k":"v"}}`, Identity: `{"cognitoIdentityId":"id-1"}`})
	inst := start(t, s, shimDir, api, root, "index.handler")
	o := api.Outcome(inst)
	var got struct {
		AWSRequestID, FunctionName, FunctionVersion, InvokedFunctionArn string
		MemoryLimitInMB, LogGroupName, LogStreamName                    string
		CallbackWaitsForEmptyEventLoop                                  bool
		ClientContext                                                   map[string]any
		Identity                                                        map[string]any
		Fns                                                             []string
		R1, R2                                                          float64
	}
	if err := json.Unmarshal(o.Body, &got); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Body, err)
	}
	want := map[string][2]string{
		"awsRequestId":       {got.AWSRequestID, id},
		"functionName":       {got.FunctionName, "hello"},
		"functionVersion":    {got.FunctionVersion, "3"},
		"invokedFunctionArn": {got.InvokedFunctionArn, "arn:aws:lambda:us-east-1:000000000000:function:hello"},
		"memoryLimitInMB":    {got.MemoryLimitInMB, "128"},
		"logGroupName":       {got.LogGroupName, "/aws/lambda/hello"},
		"logStreamName":      {got.LogStreamName, "2026/01/01/[3]0123456789abcdef"},
	}
	for field, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("context.%s = %q, want %q", field, gw[0], gw[1])
		}
	}
	if !got.CallbackWaitsForEmptyEventLoop {
		t.Error("callbackWaitsForEmptyEventLoop is false by default")
	}
	if got.ClientContext["custom"] == nil || got.Identity["cognitoIdentityId"] != "id-1" {
		t.Errorf("clientContext %v, identity %v", got.ClientContext, got.Identity)
	}
	if strings.Join(got.Fns, ",") != "function,function,function" {
		t.Errorf("done, succeed, fail are %v", got.Fns)
	}
	if !(got.R1 > got.R2 && got.R2 > 0 && got.R1 <= 30000) {
		t.Errorf("getRemainingTimeInMillis: %v then %v, want decreasing, positive, at most 30000", got.R1, got.R2)
	}
}

func TestNodeGlobalsPersist(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": `
let count = 0;
const loadedAt = Date.now();
exports.handler = async () => ({count: ++count, pid: process.pid, loadedAt});`})
	api := newFakeAPI(t)
	inst := start(t, s, shimDir, api, root, "index.handler")
	var got [2]struct{ Count, Pid, LoadedAt int64 }
	for i := range got {
		api.Invoke(`{}`)
		o := api.Outcome(inst)
		if err := json.Unmarshal(o.Body, &got[i]); err != nil {
			t.Fatalf("%s %s: %v", o.Kind, o.Body, err)
		}
	}
	if got[0].Count != 1 || got[1].Count != 2 || got[0].Pid != got[1].Pid || got[0].LoadedAt != got[1].LoadedAt {
		t.Errorf("two invocations saw %+v, want counts 1 and 2 in one process that loaded the module once", got)
	}
}

// TestNodeCallbackWaitsForEmptyEventLoop checks the order of a callback's
// response and a timer the handler left behind: by default the response
// waits for the timer (and the request it makes); with
// callbackWaitsForEmptyEventLoop false it does not.
func TestNodeCallbackWaitsForEmptyEventLoop(t *testing.T) {
	t.Parallel()
	code := `
const http = require('http');
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => {
    http.request({host, port, method: 'POST', path: '/test/mark'}, (res) => res.resume()).end('timer');
  }, 50);
  callback(null, 'answered');
};`
	for _, wait := range []bool{true, false} {
		t.Run("wait="+map[bool]string{true: "true", false: "false"}[wait], func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": code})
			api := newFakeAPI(t)
			api.Invoke(`{"wait":` + map[bool]string{true: "true", false: "false"}[wait] + `}`)
			inst := start(t, s, shimDir, api, root, "index.handler")
			var o outcome
			var markAt time.Time
			if wait {
				_, markAt = api.Mark(inst)
				o = api.Outcome(inst)
			} else {
				o = api.Outcome(inst)
				_, markAt = api.Mark(inst)
			}
			if !jsonEqual(t, o.Body, `"answered"`) {
				t.Errorf("response %s", o.Body)
			}
			if wait && o.At.Before(markAt) || !wait && o.At.After(markAt) {
				t.Errorf("wait=%v: response at %v, timer's request at %v", wait, o.At, markAt)
			}
		})
	}
}

func TestNodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      string
		errorType string
		message   string
		trace     string // a prefix of trace[0], if any
	}{
		{
			name:      "async throw",
			code:      `exports.handler = async () => { throw new TypeError("boom"); };`,
			errorType: "TypeError", message: "boom", trace: "TypeError: boom",
		},
		{
			name:      "sync throw",
			code:      `exports.handler = (e, c, cb) => { null.x; };`,
			errorType: "TypeError", message: "Cannot read properties of null (reading 'x')",
			trace: "TypeError: Cannot read properties of null",
		},
		{
			name:      "callback error",
			code:      `exports.handler = (e, c, cb) => { const err = new Error("cb failed"); err.name = "ValidationError"; cb(err); };`,
			errorType: "ValidationError", message: "cb failed", trace: "ValidationError: cb failed",
		},
		{
			name:      "callback with a string",
			code:      `exports.handler = (e, c, cb) => cb("plain failure");`,
			errorType: "string", message: "plain failure",
		},
		{
			name:      "rejected promise",
			code:      `exports.handler = () => Promise.reject(new RangeError("out of range"));`,
			errorType: "RangeError", message: "out of range", trace: "RangeError: out of range",
		},
		{
			name:      "context.fail without an error",
			code:      `exports.handler = (e, context) => context.fail();`,
			errorType: "string", message: "handled",
		},
		{
			name:      "error name not fit for a header",
			code:      "exports.handler = async () => { const e = new Error(\"odd\"); e.name = \"Bad\\nName\\u00e9\"; throw e; };",
			errorType: "Bad\nName\u00e9", message: "odd", trace: "Bad",
		},
		{
			name:      "result not serializable",
			code:      `exports.handler = async () => ({big: 10n});`,
			errorType: "Error", message: "Unable to stringify response body: Do not know how to serialize a BigInt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": tt.code})
			api := newFakeAPI(t)
			id := api.Invoke(`{}`)
			inst := start(t, s, shimDir, api, root, "index.handler")
			o := api.Outcome(inst)
			if o.Kind != "error" || o.ID != id {
				t.Fatalf("got %s for %q: %s, want an error for %q", o.Kind, o.ID, o.Body, id)
			}
			e := decodeError(t, o)
			if e.ErrorType != tt.errorType || e.ErrorMessage != tt.message {
				t.Errorf("error %s: %s, want %s: %s", e.ErrorType, e.ErrorMessage, tt.errorType, tt.message)
			}
			if tt.trace != "" && (len(e.Trace) < 2 || !strings.HasPrefix(e.Trace[0], tt.trace)) {
				t.Errorf("trace %q, want it to start with %q and have frames", e.Trace, tt.trace)
			}
			// The instance lives on: the next invocation works.
			api.Invoke(`{}`)
			if o := api.Outcome(inst); o.Kind != "error" {
				t.Errorf("second invocation: %s %s", o.Kind, o.Body)
			}
			inst.Stop()
			if !strings.Contains(inst.stderr.String(), "Invoke Error") {
				t.Errorf("the error is not in the logs:\n%s", inst.logs())
			}
		})
	}
}

// TestNodeUncaughtException checks that an exception thrown outside the
// handler's own call, or a rejection nobody handles, fails the invocation
// running then and ends the process, as Lambda does; and that one thrown
// after the invocation was answered only ends the process.
func TestNodeUncaughtException(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      string
		errorType string // of the invocation; "" when it succeeds
		message   string
		exit      int
	}{
		{
			name:      "thrown from a timer",
			code:      `exports.handler = (e, c, cb) => { setTimeout(() => { throw new Error("from a timer"); }, 5); };`,
			errorType: "Error", message: "from a timer", exit: 129,
		},
		{
			name:      "unhandled rejection",
			code:      `exports.handler = (e, c, cb) => { Promise.reject(new Error("nobody catches")); };`,
			errorType: "Runtime.UnhandledPromiseRejection", message: "Error: nobody catches", exit: 128,
		},
		{
			name: "thrown after the answer",
			code: `exports.handler = (e, context, cb) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => { throw new Error("late"); }, 50);
  cb(null, "answered");
};`,
			exit: 129,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": tt.code})
			api := newFakeAPI(t)
			id := api.Invoke(`{}`)
			inst := start(t, s, shimDir, api, root, "index.handler")
			o := api.Outcome(inst)
			if o.ID != id {
				t.Fatalf("got %s for %q: %s", o.Kind, o.ID, o.Body)
			}
			if tt.errorType == "" {
				if o.Kind != "response" {
					t.Errorf("got %s %s, want the response", o.Kind, o.Body)
				}
			} else if e := decodeError(t, o); o.Kind != "error" || e.ErrorType != tt.errorType || e.ErrorMessage != tt.message {
				t.Errorf("got %s %+v, want error %s: %s", o.Kind, e, tt.errorType, tt.message)
			}
			if code := inst.Wait(t); code != tt.exit {
				t.Errorf("exit code %d, want %d", code, tt.exit)
			}
			select {
			case o := <-api.outcomes:
				t.Errorf("posted %s %s after the invocation ended", o.Kind, o.Body)
			default:
			}
		})
	}
}

func TestNodeInitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      map[string]string
		handler   string
		errorType string
		message   string // a substring of errorMessage
	}{
		{
			name:      "module not found",
			code:      map[string]string{"index.js": `exports.handler = async () => 1;`},
			handler:   "missing.handler",
			errorType: "Runtime.ImportModuleError", message: "Cannot find module 'missing'",
		},
		{
			name:      "handler not exported",
			code:      map[string]string{"index.js": `exports.other = async () => 1;`},
			handler:   "index.handler",
			errorType: "Runtime.HandlerNotFound", message: "index.handler is undefined or not exported",
		},
		{
			name:      "handler not a function",
			code:      map[string]string{"index.js": `exports.handler = 42;`},
			handler:   "index.handler",
			errorType: "Runtime.HandlerNotFound", message: "index.handler is not a function",
		},
		{
			name:      "syntax error",
			code:      map[string]string{"index.js": `exports.handler = async () => {;`},
			handler:   "index.handler",
			errorType: "Runtime.UserCodeSyntaxError", message: "SyntaxError",
		},
		{
			name:      "esm syntax error",
			code:      map[string]string{"index.mjs": `export const handler = async () => { return };}`},
			handler:   "index.handler",
			errorType: "Runtime.UserCodeSyntaxError", message: "SyntaxError",
		},
		{
			name:      "esm import of a missing package",
			code:      map[string]string{"index.mjs": `import x from 'not-installed'; export const handler = async () => x;`},
			handler:   "index.handler",
			errorType: "Runtime.ImportModuleError", message: "not-installed",
		},
		{
			name:      "module throws while loading",
			code:      map[string]string{"index.js": `throw new Error("no config"); exports.handler = async () => 1;`},
			handler:   "index.handler",
			errorType: "Error", message: "no config",
		},
		{
			name:      "malformed handler",
			code:      map[string]string{"index.js": `exports.handler = async () => 1;`},
			handler:   "index",
			errorType: "Runtime.MalformedHandlerName", message: "Bad handler",
		},
		{
			name:      "handler outside the code",
			code:      map[string]string{"index.js": `exports.handler = async () => 1;`},
			handler:   "../etc/index.handler",
			errorType: "Runtime.MalformedHandlerName", message: "not a valid handler name",
		},
		{
			name:      "response streaming",
			code:      map[string]string{"index.mjs": `export const handler = awslambda.streamifyResponse(async (e, stream) => stream.end());`},
			handler:   "index.handler",
			errorType: "Runtime.MalformedStreamingHandler", message: "not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, NodeJS, tt.code)
			api := newFakeAPI(t)
			inst := start(t, s, shimDir, api, root, tt.handler)
			o := api.Outcome(inst)
			if o.Kind != "init" {
				t.Fatalf("got %s %s, want an init error", o.Kind, o.Body)
			}
			e := decodeError(t, o)
			if e.ErrorType != tt.errorType || !strings.Contains(e.ErrorMessage, tt.message) {
				t.Errorf("init error %s: %q, want %s: ...%s...", e.ErrorType, e.ErrorMessage, tt.errorType, tt.message)
			}
			if code := inst.Wait(t); code == 0 {
				t.Error("exit code 0 after an init error")
			}
			if !strings.Contains(inst.stderr.String(), tt.errorType) {
				t.Errorf("the init error is not in the logs:\n%s", inst.logs())
			}
		})
	}
}

func TestNodeLogs(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, NodeJS, map[string]string{"index.js": `
console.log("loading");
exports.handler = async (event) => { console.log("hello", event.name); console.error("to stderr"); return 1; };`})
	api := newFakeAPI(t)
	api.Invoke(`{"name":"Ada"}`)
	inst := start(t, s, shimDir, api, root, "index.handler")
	api.Outcome(inst)
	inst.Stop()
	if out := inst.stdout.String(); out != "loading\nhello Ada\n" {
		t.Errorf("stdout %q, want the handler's lines as they are", out)
	}
	if errOut := inst.stderr.String(); errOut != "to stderr\n" {
		t.Errorf("stderr %q", errOut)
	}
}
