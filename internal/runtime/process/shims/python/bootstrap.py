"""Hostless runtime shim for Python.

Runs a handler written for AWS Lambda's Python runtime, unchanged, against the
Lambda Runtime API (2018-06-01), with the standard library only. Behaviour
follows Lambda's python3.11 runtime: the handler string ("app.handler",
"src/app.handler"), the context object, JSON results (bytes pass through as
they are), error bodies ({errorMessage, errorType, requestId, stackTrace}) and
init error types (Runtime.ImportModuleError, Runtime.HandlerNotFound,
Runtime.UserCodeSyntaxError, ...).

Deviations, on purpose:
  - decimal.Decimal results encode as JSON numbers through int or float
    (Lambda's simplejson writes the exact digits; the value is the same).
  - Output the handler writes itself (print) passes through unchanged. The
    root logger gets a handler in Lambda's text format, as on Lambda, so
    logging.getLogger().info(...) is seen once the level allows it.
  - No X-Ray error cause header.

Run it as `python3 -u -B bootstrap.py`: unbuffered, so every line reaches the
platform as it is written, and no bytecode written to the read-only code.
Exit code 1 after an init failure or a lost Runtime API.
"""

import decimal
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
import urllib.parse

API_PREFIX = "/2018-06-01/runtime"
SHIM_FILE = os.path.abspath(__file__)


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------------------
# The Runtime API client.


class RuntimeClient:
    """One kept-alive HTTP connection to the Runtime API."""

    def __init__(self, address):
        self.address = address
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            reused = self.conn is not None
            if not reused:
                self.conn = http.client.HTTPConnection(self.address)
            try:
                self.conn.request(method, API_PREFIX + path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp.status, resp.headers, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed while idle: send
                # once more on a new connection.
                self.conn.close()
                self.conn = None
                if not reused or attempt:
                    raise

    def post(self, path, body, headers):
        status, _, data = self.request("POST", path, body, headers)
        if not 200 <= status <= 299:
            # The platform refused what the shim sent; it records that
            # itself. Say it in the logs and go on.
            _write_log_lines(
                ["[ERROR] Runtime API refused POST %s: %d %s" % (path, status, data.decode("utf-8", "replace"))]
            )

    def next(self):
        status, headers, body = self.request("GET", "/invocation/next")
        if status != 200:
            raise RuntimeError("GET next: %d %s" % (status, body.decode("utf-8", "replace")))
        if not headers.get("Lambda-Runtime-Aws-Request-Id"):
            raise RuntimeError("GET next: no Lambda-Runtime-Aws-Request-Id")
        return headers, body

    def post_response(self, request_id, body, content_type):
        self.post(
            "/invocation/%s/response" % urllib.parse.quote(request_id, safe=""),
            body,
            {"Content-Type": content_type},
        )

    def post_error(self, request_id, error):
        self.post(
            "/invocation/%s/error" % urllib.parse.quote(request_id, safe=""),
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error["errorType"]},
        )

    def post_init_error(self, error):
        self.post(
            "/init/error",
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error["errorType"]},
        )


# ---------------------------------------------------------------------------
# JSON, errors and logs.


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            if not o.is_finite():
                return float(o)
            if o == o.to_integral_value():
                return int(o)
            return float(o)
        return super().default(o)


_encoder = _Encoder()


def to_json(obj):
    return _encoder.encode(obj)


def make_error(error_message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def user_frames(tb):
    """The traceback's frames from the first one outside this shim on."""
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != SHIM_FILE:
            return traceback.format_list(frames[i:])
    return []


def fault_result(exc_info, request_id=None):
    etype, value, tb = exc_info
    return make_error(str(value), etype.__name__, user_frames(tb), request_id)


def _write_log_lines(lines):
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def log_error(error):
    head = "[ERROR]"
    if error.get("errorType"):
        head += " " + error["errorType"]
    if error.get("errorMessage"):
        head += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [head]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        for element in error["stackTrace"]:
            lines.extend(element.splitlines())
    _write_log_lines(lines)


_request_id = ""


class _RequestIDFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


def setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIDFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:
        root.setLevel(level)


# ---------------------------------------------------------------------------
# The handler and its context.


def load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, e))
    if modname.split(".")[0] in sys.builtin_module_names:
        raise FaultException(
            FaultException.BUILT_IN_MODULE_CONFLICT,
            "Cannot use built-in module {} as a handler module".format(modname),
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, e)
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, "Syntax error in module '{}': {}".format(modname, e), trace
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname)
        )


class _Slots:
    __slots__ = ()

    def __init__(self, d):
        for field in self.__slots__:
            setattr(self, field, d.get(field))

    def __repr__(self):
        fields = ",".join("%s=%s" % (f, getattr(self, f)) for f in self.__slots__)
        return "%s([%s])" % (self.__class__.__name__, fields)


class CognitoIdentity(_Slots):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client(_Slots):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext(_Slots):
    __slots__ = ["custom", "env", "client"]


class LambdaContext:
    def __init__(self, request_id, client_context, cognito_identity, deadline_ms, invoked_function_arn):
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        if client_context is not None:
            self.client_context = ClientContext(client_context)
            self.client_context.client = None if self.client_context.client is None else Client(self.client_context.client)
        self.identity = CognitoIdentity({})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},function_name={},"
            "memory_limit_in_mb={},function_version={},invoked_function_arn={},client_context={},identity={}])"
        ).format(
            self.aws_request_id,
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
            self.invoked_function_arn,
            self.client_context,
            self.identity,
        )


def _json_header(value, name):
    if not value:
        return None
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, e)
        )


def _int_header(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def handle(client, handler, headers, body):
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
    error = None
    try:
        context = LambdaContext(
            request_id,
            _json_header(headers.get("Lambda-Runtime-Client-Context"), "Client Context"),
            _json_header(headers.get("Lambda-Runtime-Cognito-Identity"), "Cognito Identity"),
            _int_header(headers.get("Lambda-Runtime-Deadline-Ms")),
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
        )
        content_type = headers.get("Content-Type")
        if content_type and not content_type.startswith("application/json"):
            event = body
        else:
            try:
                event = json.loads(body)
            except Exception as e:
                raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(e))
        response = handler(event, context)
        if isinstance(response, bytes):
            result, result_type = response, "application/unknown"
        else:
            try:
                result, result_type = to_json(response).encode("utf-8"), "application/json"
            except Exception as e:
                raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(e))
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace, request_id)
    except Exception:
        error = fault_result(sys.exc_info(), request_id)

    if error is not None:
        log_error(error)
        client.post_error(request_id, error)
    else:
        client.post_response(request_id, result, result_type)


def main():
    global _request_id
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("hostless python shim: AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The user's modules come first, and this shim's directory not at all:
    # a user module may be named bootstrap.
    sys.path[0] = task_root
    try:
        os.chdir(task_root)
    except OSError:
        pass  # Importing the module below says what is wrong with it.
    setup_logging()
    client = RuntimeClient(address)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error = fault_result(sys.exc_info())
    else:
        error = None
    if error is not None:
        log_error(error)
        try:
            client.post_init_error(error)
        except OSError as e:
            sys.stderr.write("hostless python shim: Runtime API unreachable: %s\n" % e)
        sys.exit(1)

    while True:
        try:
            headers, body = client.next()
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            sys.stderr.write("hostless python shim: Runtime API failure: %s\n" % e)
            sys.exit(1)
        _request_id = headers.get("Lambda-Runtime-Aws-Request-Id") or ""
        trace_id = headers.get("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            handle(client, handler, headers, body)
        except (OSError, http.client.HTTPException) as e:
            sys.stderr.write("hostless python shim: Runtime API failure: %s\n" % e)
            sys.exit(1)


if __name__ == "__main__":
    main()
