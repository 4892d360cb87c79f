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

It speaks HTTP/1.1 to the Runtime API itself, on a socket: http.client,
with the ssl and email packages it imports, would double the shim's start.

Run it as `python3 -u -B bootstrap.py`: unbuffered, so every line reaches the
platform as it is written, and no bytecode written to the read-only code.
Exit code 1 after an init failure or a lost Runtime API.
"""

import importlib
import json
import logging
import os
import socket
import sys
import time

# http.client, traceback and decimal are not imported up front: http.client
# alone (with ssl and email) costs more than the rest of the shim's start.

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
    """HTTP/1.1 over one kept-alive connection to the Runtime API.

    The Runtime API is the platform's own local server, so this speaks just
    the HTTP it needs: Content-Length or chunked bodies, keep-alive and
    Connection: close.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.address = address
        self.host = host
        self.port = int(port)
        self.sock = None
        self.reader = None

    def close(self):
        if self.reader is not None:
            self.reader.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def request(self, method, path, body=None, headers=None):
        head = "%s %s%s HTTP/1.1\r\nHost: %s\r\n" % (method, API_PREFIX, path, self.address)
        for name, value in (headers or {}).items():
            head += "%s: %s\r\n" % (name, value)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        data = head.encode("latin-1") + b"\r\n" + (body or b"")
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self.sock = socket.create_connection((self.host, self.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.reader = self.sock.makefile("rb")
            try:
                self.sock.sendall(data)
                status_line = self.reader.readline(65536)
                if not status_line:
                    raise ConnectionResetError("connection closed before a response")
            except (ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed while idle: the
                # request never reached it, so send it once more on a new
                # connection.
                self.close()
                if not reused or attempt:
                    raise
                continue
            return self._response(status_line)

    def _response(self, status_line):
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise RuntimeError("bad status line %r" % status_line)
        status = int(parts[1])
        headers = {}
        while True:
            line = self.reader.readline(65536)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = parts[0] == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif status == 204 or status == 304 or 100 <= status < 200:
            body = b""
        else:
            body = self.reader.read()
            keep_alive = False
        if not keep_alive:
            self.close()
        return status, headers, body

    def _exactly(self, n):
        data = self.reader.read(n)
        if len(data) != n:
            raise ConnectionResetError("connection closed in a response body")
        return data

    def _chunked(self):
        chunks = []
        while True:
            size = int(self.reader.readline(65536).split(b";")[0].strip(), 16)
            if size == 0:
                while self.reader.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self._exactly(size))
            self.reader.readline(65536)

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
        if not headers.get("lambda-runtime-aws-request-id"):
            raise RuntimeError("GET next: no Lambda-Runtime-Aws-Request-Id")
        return headers, body

    def post_response(self, request_id, body, content_type):
        self.post("/invocation/%s/response" % _quote(request_id), body, {"Content-Type": content_type})

    def post_error(self, request_id, error):
        self.post(
            "/invocation/%s/error" % _quote(request_id),
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": _header_value(error["errorType"])},
        )

    def post_init_error(self, error):
        self.post(
            "/init/error",
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": _header_value(error["errorType"])},
        )


def _quote(s):
    """Percent-encodes s for a URL path segment."""
    return "".join(
        c if c.isascii() and (c.isalnum() or c in "-._~") else "".join("%%%02X" % b for b in c.encode("utf-8"))
        for c in s
    )


def _header_value(s):
    """s with anything but printable ASCII replaced: an error type can be any
    class name."""
    return "".join(c if " " <= c <= "~" else "?" for c in s)


# ---------------------------------------------------------------------------
# JSON, errors and logs.


class _Encoder(json.JSONEncoder):
    def default(self, o):
        # A Decimal exists only if decimal was imported.
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(o, decimal.Decimal):
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
    import traceback

    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != SHIM_FILE:
            return traceback.format_list(frames[i:])
    return []


def fault_result(exc_info, request_id=None):
    etype, value, tb = exc_info
    try:
        message = str(value)
    except Exception:
        message = "<exception str() failed>"
    return make_error(message, etype.__name__, user_frames(tb), request_id)


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
    request_id = headers["lambda-runtime-aws-request-id"]
    error = None
    try:
        context = LambdaContext(
            request_id,
            _json_header(headers.get("lambda-runtime-client-context"), "Client Context"),
            _json_header(headers.get("lambda-runtime-cognito-identity"), "Cognito Identity"),
            _int_header(headers.get("lambda-runtime-deadline-ms")),
            headers.get("lambda-runtime-invoked-function-arn"),
        )
        content_type = headers.get("content-type")
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
    # a user module may be named bootstrap. (With PYTHONSAFEPATH set, the
    # script's directory is not on sys.path to begin with.)
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(SHIM_FILE):
        del sys.path[0]
    sys.path.insert(0, task_root)
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
        except (OSError, RuntimeError, ValueError) as e:
            sys.stderr.write("hostless python shim: Runtime API unreachable: %s\n" % e)
        sys.exit(1)

    while True:
        try:
            headers, body = client.next()
        except (OSError, RuntimeError, ValueError) as e:
            sys.stderr.write("hostless python shim: Runtime API failure: %s\n" % e)
            sys.exit(1)
        _request_id = headers["lambda-runtime-aws-request-id"]
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            handle(client, handler, headers, body)
        except (OSError, RuntimeError, ValueError) as e:
            sys.stderr.write("hostless python shim: Runtime API failure: %s\n" % e)
            sys.exit(1)


if __name__ == "__main__":
    main()
