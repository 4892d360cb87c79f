package shims

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPythonHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		code        map[string]string
		handler     string
		event       string
		want        string // JSON, or the raw body when contentType is set
		contentType string
		env         []string // added to the function's environment
	}{
		{
			name:    "sync return",
			code:    map[string]string{"app.py": "def lambda_handler(event, context):\n    return {'hello': event['name']}\n"},
			handler: "app.lambda_handler",
			event:   `{"name":"Ada"}`,
			want:    `{"hello":"Ada"}`,
		},
		{
			name: "nested path",
			code: map[string]string{
				"src/app.py":  "from src import util\n\ndef handler(event, context):\n    return util.double(event['n'])\n",
				"src/util.py": "def double(n):\n    return {'n': n * 2}\n",
			},
			handler: "src/app.handler",
			event:   `{"n":21}`,
			want:    `{"n":42}`,
		},
		{
			name:    "package module",
			code:    map[string]string{"pkg/__init__.py": "", "pkg/mod.py": "def handler(event, context):\n    return 'from a package'\n"},
			handler: "pkg.mod.handler",
			event:   `{}`,
			want:    `"from a package"`,
		},
		{
			name:    "a user module named bootstrap",
			code:    map[string]string{"bootstrap.py": "def handler(event, context):\n    return __name__\n"},
			handler: "bootstrap.handler",
			event:   `{}`,
			want:    `"bootstrap"`,
		},
		{
			name:    "a user module named bootstrap, with PYTHONSAFEPATH",
			code:    map[string]string{"bootstrap.py": "import sys\n\ndef handler(event, context):\n    return sys.path[0] == __file__.rsplit('/', 1)[0]\n"},
			handler: "bootstrap.handler",
			event:   `{}`,
			want:    `true`,
			env:     []string{"PYTHONSAFEPATH=1"},
		},
		{
			name:    "None is null",
			code:    map[string]string{"app.py": "def handler(event, context):\n    pass\n"},
			handler: "app.handler",
			event:   `{}`,
			want:    `null`,
		},
		{
			name:    "event of any JSON type",
			code:    map[string]string{"app.py": "def handler(event, context):\n    return [type(event).__name__, event]\n"},
			handler: "app.handler",
			event:   `[1, "two"]`,
			want:    `["list", [1, "two"]]`,
		},
		{
			name:    "decimals",
			code:    map[string]string{"app.py": "from decimal import Decimal\n\ndef handler(event, context):\n    return {'int': Decimal('42'), 'frac': Decimal('1.5')}\n"},
			handler: "app.handler",
			event:   `{}`,
			want:    `{"int":42,"frac":1.5}`,
		},
		{
			name:        "bytes pass through",
			code:        map[string]string{"app.py": "def handler(event, context):\n    return b'raw \\xff'\n"},
			handler:     "app.handler",
			event:       `{}`,
			want:        "raw \xff",
			contentType: "application/unknown",
		},
		{
			name:    "env, cwd and trace ID",
			code:    map[string]string{"app.py": "import os\n\ndef handler(event, context):\n    return {'cwd': os.getcwd() == os.environ['LAMBDA_TASK_ROOT'], 'region': os.environ['AWS_REGION'], 'trace': os.environ.get('_X_AMZN_TRACE_ID')}\n"},
			handler: "app.handler",
			event:   `{}`,
			want:    `{"cwd":true,"region":"us-east-1","trace":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, Python, tt.code)
			api := newFakeAPI(t)
			api.Invoke(tt.event)
			inst := start(t, s, shimDir, api, root, tt.handler, withEnv(tt.env...))
			o := api.Outcome(inst)
			if o.Kind != "response" {
				t.Fatalf("got %s %s, want a response", o.Kind, o.Body)
			}
			if tt.contentType != "" {
				if string(o.Body) != tt.want || o.ContentType != tt.contentType {
					t.Errorf("response %q (%s), want %q (%s)", o.Body, o.ContentType, tt.want, tt.contentType)
				}
				return
			}
			if o.ContentType != "application/json" {
				t.Errorf("Content-Type %q", o.ContentType)
			}
			if !jsonEqual(t, o.Body, tt.want) {
				t.Errorf("response %s, want %s", o.Body, tt.want)
			}
		})
	}
}

func TestPythonContext(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, Python, map[string]string{"app.py": `
import time

def handler(event, context):
    r1 = context.get_remaining_time_in_millis()
    time.sleep(0.02)
    r2 = context.get_remaining_time_in_millis()
    return {
        'aws_request_id': context.aws_request_id, 'function_name': context.function_name,
        'function_version': context.function_version, 'invoked_function_arn': context.invoked_function_arn,
        'memory_limit_in_mb': context.memory_limit_in_mb, 'log_group_name': context.log_group_name,
        'log_stream_name': context.log_stream_name,
        'custom': context.client_context.custom, 'identity_id': context.identity.cognito_identity_id,
        'r1': r1, 'r2': r2,
    }
`})
	api := newFakeAPI(t)
	id := api.InvokeEvent(event{Body: `{}`, Deadline: time.Now().Add(30 * time.Second),
		ClientContext: `{"custom":{"k":"v"}}`, Identity: `{"cognitoIdentityId":"id-1"}`})
	inst := start(t, s, shimDir, api, root, "app.handler")
	o := api.Outcome(inst)
	var got map[string]any
	if err := json.Unmarshal(o.Body, &got); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Body, err)
	}
	want := map[string]string{
		"aws_request_id":       id,
		"function_name":        "hello",
		"function_version":     "3",
		"invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:hello",
		"memory_limit_in_mb":   "128",
		"log_group_name":       "/aws/lambda/hello",
		"log_stream_name":      "2026/01/01/[3]0123456789abcdef",
		"identity_id":          "id-1",
	}
	for field, w := range want {
		if got[field] != w {
			t.Errorf("context.%s = %v, want %q", field, got[field], w)
		}
	}
	if c, _ := got["custom"].(map[string]any); c["k"] != "v" {
		t.Errorf("client_context.custom = %v", got["custom"])
	}
	r1, _ := got["r1"].(float64)
	r2, _ := got["r2"].(float64)
	if !(r1 > r2 && r2 > 0 && r1 <= 30000) {
		t.Errorf("get_remaining_time_in_millis: %v then %v, want decreasing, positive, at most 30000", got["r1"], got["r2"])
	}
}

func TestPythonGlobalsPersist(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, Python, map[string]string{"app.py": `
import os, time
count = 0
loaded_at = time.time()

def handler(event, context):
    global count
    count += 1
    return {'count': count, 'pid': os.getpid(), 'loaded_at': loaded_at}
`})
	api := newFakeAPI(t)
	inst := start(t, s, shimDir, api, root, "app.handler")
	var got [2]struct {
		Count, Pid int64
		LoadedAt   float64 `json:"loaded_at"`
	}
	for i := range got {
		api.Invoke(`{}`)
		o := api.Outcome(inst)
		if err := json.Unmarshal(o.Body, &got[i]); err != nil {
			t.Fatalf("%s %s: %v", o.Kind, o.Body, err)
		}
	}
	if got[0].Count != 1 || got[1].Count != 2 || got[0].Pid != got[1].Pid || got[0].LoadedAt != got[1].LoadedAt {
		t.Errorf("two invocations saw %+v, want counts 1 and 2 in one process that imported the module once", got)
	}
}

func TestPythonErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      string
		event     string
		errorType string
		message   string
		trace     string // a substring of the last stackTrace entry, if any
	}{
		{
			name:      "exception",
			code:      "def handler(event, context):\n    raise ValueError('boom')\n",
			errorType: "ValueError", message: "boom", trace: `app.py", line 2, in handler`,
		},
		{
			name:      "exception class of its own",
			code:      "class PaymentDeclined(Exception):\n    pass\n\ndef handler(event, context):\n    raise PaymentDeclined('card 4242')\n",
			errorType: "PaymentDeclined", message: "card 4242", trace: "raise PaymentDeclined",
		},
		{
			name:      "exception from a nested call",
			code:      "def parse(e):\n    return e['missing']\n\ndef handler(event, context):\n    return parse(event)\n",
			errorType: "KeyError", message: "'missing'", trace: `line 2, in parse`,
		},
		{
			name:      "exception class named beyond ASCII",
			code:      "class Ошибка(Exception):\n    pass\n\ndef handler(event, context):\n    raise Ошибка('нет')\n",
			errorType: "Ошибка", message: "нет", trace: "raise Ошибка",
		},
		{
			name:      "exception that can't be printed",
			code:      "class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n\ndef handler(event, context):\n    raise Odd()\n",
			errorType: "Odd", message: "<exception str() failed>", trace: "raise Odd()",
		},
		{
			name:      "result not serializable",
			code:      "def handler(event, context):\n    return {'tags': {'a'}}\n",
			errorType: "Runtime.MarshalError", message: "Unable to marshal response: Object of type set is not JSON serializable",
		},
		{
			name:      "event not JSON",
			code:      "def handler(event, context):\n    return 1\n",
			event:     `{not json`,
			errorType: "Runtime.UnmarshalError", message: "Unable to unmarshal input: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, Python, map[string]string{"app.py": tt.code})
			api := newFakeAPI(t)
			event := tt.event
			if event == "" {
				event = `{}`
			}
			id := api.Invoke(event)
			inst := start(t, s, shimDir, api, root, "app.handler")
			o := api.Outcome(inst)
			if o.Kind != "error" || o.ID != id {
				t.Fatalf("got %s for %q: %s, want an error for %q", o.Kind, o.ID, o.Body, id)
			}
			e := decodeError(t, o)
			if e.ErrorType != tt.errorType || e.ErrorMessage != tt.message {
				t.Errorf("error %s: %s, want %s: %s", e.ErrorType, e.ErrorMessage, tt.errorType, tt.message)
			}
			if e.RequestID == nil || *e.RequestID != id {
				t.Errorf("requestId %v, want %q", e.RequestID, id)
			}
			if tt.trace != "" {
				if len(e.StackTrace) == 0 || !strings.Contains(e.StackTrace[len(e.StackTrace)-1], tt.trace) {
					t.Errorf("stackTrace %q, want its last frame to contain %q", e.StackTrace, tt.trace)
				}
				for _, frame := range e.StackTrace {
					if strings.Contains(frame, "bootstrap.py") {
						t.Errorf("stackTrace shows the shim: %q", e.StackTrace)
					}
				}
			}
			// The instance lives on: the next invocation works.
			api.Invoke(event)
			if o := api.Outcome(inst); o.Kind != "error" {
				t.Errorf("second invocation: %s %s", o.Kind, o.Body)
			}
			inst.Stop()
			if !strings.Contains(inst.stdout.String(), "[ERROR] "+tt.errorType) {
				t.Errorf("the error is not in the logs:\n%s", inst.logs())
			}
		})
	}
}

func TestPythonInitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      map[string]string
		handler   string
		errorType string
		message   string
	}{
		{
			name:      "module not found",
			code:      map[string]string{"app.py": "def handler(e, c):\n    return 1\n"},
			handler:   "missing.handler",
			errorType: "Runtime.ImportModuleError", message: "Unable to import module 'missing': No module named 'missing'",
		},
		{
			name:      "module imports a missing package",
			code:      map[string]string{"app.py": "import requests_not_installed\n\ndef handler(e, c):\n    return 1\n"},
			handler:   "app.handler",
			errorType: "Runtime.ImportModuleError", message: "Unable to import module 'app': No module named 'requests_not_installed'",
		},
		{
			name:      "handler missing",
			code:      map[string]string{"app.py": "def other(e, c):\n    return 1\n"},
			handler:   "app.handler",
			errorType: "Runtime.HandlerNotFound", message: "Handler 'handler' missing on module 'app'",
		},
		{
			name:      "syntax error",
			code:      map[string]string{"app.py": "def handler(e, c)\n    return 1\n"},
			handler:   "app.handler",
			errorType: "Runtime.UserCodeSyntaxError", message: "Syntax error in module 'app': expected ':' (app.py, line 1)",
		},
		{
			name:      "module raises while importing",
			code:      map[string]string{"app.py": "x = 1 / 0\n"},
			handler:   "app.handler",
			errorType: "ZeroDivisionError", message: "division by zero",
		},
		{
			name:      "malformed handler",
			code:      map[string]string{"app.py": ""},
			handler:   "app",
			errorType: "Runtime.MalformedHandlerName", message: "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
		},
		{
			name:      "built-in module",
			code:      map[string]string{},
			handler:   "sys.exit",
			errorType: "Runtime.BuiltInModuleConflict", message: "Cannot use built-in module sys as a handler module",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, Python, tt.code)
			api := newFakeAPI(t)
			inst := start(t, s, shimDir, api, root, tt.handler)
			o := api.Outcome(inst)
			if o.Kind != "init" {
				t.Fatalf("got %s %s, want an init error", o.Kind, o.Body)
			}
			e := decodeError(t, o)
			if e.ErrorType != tt.errorType || e.ErrorMessage != tt.message {
				t.Errorf("init error %s: %q, want %s: %q", e.ErrorType, e.ErrorMessage, tt.errorType, tt.message)
			}
			if code := inst.Wait(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(inst.stdout.String(), "[ERROR] "+tt.errorType) {
				t.Errorf("the init error is not in the logs:\n%s", inst.logs())
			}
		})
	}
}

func TestPythonLogs(t *testing.T) {
	t.Parallel()
	s, shimDir, root := setup(t, Python, map[string]string{"app.py": `
import logging, sys
logger = logging.getLogger()
logger.setLevel(logging.INFO)
print('loading')

def handler(event, context):
    print('hello', event['name'])
    logger.info('handled %s', event['name'])
    logging.getLogger('sub').debug('not at INFO')
    print('to stderr', file=sys.stderr)
    return 1
`})
	api := newFakeAPI(t)
	id := api.Invoke(`{"name":"Ada"}`)
	inst := start(t, s, shimDir, api, root, "app.handler")
	api.Outcome(inst)
	inst.Stop()
	out := inst.stdout.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0] != "loading" || lines[1] != "hello Ada" {
		t.Fatalf("stdout %q, want print's lines as they are, then the log record", out)
	}
	record := regexp.MustCompile(`^\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` + regexp.QuoteMeta(id) + `\thandled Ada$`)
	if !record.MatchString(lines[2]) {
		t.Errorf("log record %q, want Lambda's format with the request ID", lines[2])
	}
	if errOut := inst.stderr.String(); errOut != "to stderr\n" {
		t.Errorf("stderr %q", errOut)
	}
}
