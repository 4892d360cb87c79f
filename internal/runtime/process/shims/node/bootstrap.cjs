// Hostless runtime shim for Node.js: runs a handler written for AWS Lambda's
// Node.js runtime, unchanged, against the Lambda Runtime API (2018-06-01).
//
// It uses Node's built-in modules only. Behaviour follows Lambda's nodejs20.x
// runtime: handler strings, module resolution (CommonJS, ES modules, "type":
// "module"), callback, context.done/succeed/fail, callbackWaitsForEmptyEventLoop,
// async handlers, error shapes ({errorType, errorMessage, trace}) and init
// error types (Runtime.ImportModuleError, Runtime.HandlerNotFound, ...).
//
// Deviations, on purpose:
//   - A handler that takes no callback (fewer than three parameters) and
//     returns a value that is not a promise answers with that value, as
//     nodejs24.x does; nodejs20.x would answer null.
//   - Output the handler writes itself (console.log to stdout, console.error
//     to stderr) passes through unchanged: the platform stamps each line
//     with its time and invocation. Lines the shim writes itself (invoke and
//     init errors) use Lambda's text format.
//   - Response streaming (awslambda.streamifyResponse) is refused at init.
//   - No X-Ray error cause header; _X_AMZN_TRACE_ID is set as on Lambda.
//
// Exit codes: 1 for an init failure or a lost Runtime API, 129 after an
// uncaught exception and 128 after an unhandled rejection (as Lambda).
//
// The shim is CommonJS (.cjs, whatever package.json is above it): Node then
// starts its ES module loader only for a handler that is an ES module, which
// saves about 20 ms of CPU at every cold start of a CommonJS handler.

'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const API_PREFIX = '/2018-06-01/runtime';

// ---------------------------------------------------------------------------
// The Runtime API client.

const address = process.env.AWS_LAMBDA_RUNTIME_API || '';
const colon = address.lastIndexOf(':');
const apiHost = (colon > 0 ? address.slice(0, colon) : address).replace(/^\[(.*)\]$/, '$1');
const apiPort = colon > 0 ? parseInt(address.slice(colon + 1), 10) : 80;
// One kept-alive connection; Node unrefs an idle kept-alive socket, so it
// never keeps the event loop alive on its own (which
// callbackWaitsForEmptyEventLoop relies on).
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function apiRequest(method, urlPath, body, headers, retried) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const h = Object.assign({}, headers);
    if (payload !== undefined) {
      h['Content-Length'] = payload.length;
      if (!h['Content-Type']) h['Content-Type'] = 'application/json';
    }
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: API_PREFIX + urlPath, headers: h, agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      // A kept-alive connection the server closed while idle: the request
      // never reached it, so send it once more on a new connection.
      if (!retried && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        apiRequest(method, urlPath, body, headers, true).then(resolve, reject);
        return;
      }
      reject(err);
    });
    req.end(payload);
  });
}

async function apiPost(urlPath, body, headers) {
  const res = await apiRequest('POST', urlPath, body, headers);
  if (res.status < 200 || res.status > 299) {
    // The platform refused what the shim sent (too large, unknown request):
    // it knows and records that itself; say it in the logs and go on.
    logLine('ERROR', `Runtime API refused POST ${urlPath}: ${res.status} ${res.body}`);
  }
}

// ---------------------------------------------------------------------------
// Logging and errors.

let currentRequestId = '';

function logLine(level, message) {
  process.stderr.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
}

function isErrorLike(e) {
  return (
    e instanceof Error ||
    (e && typeof e.name === 'string' && typeof e.message === 'string' && typeof e.stack === 'string')
  );
}

// toRapidResponse is Lambda's error body: errors by name, message and stack
// lines; anything else by its type and string form.
function toRapidResponse(err) {
  try {
    if (isErrorLike(err)) {
      return {
        errorType: err.name,
        errorMessage: err.message,
        trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
      };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function runtimeError(type, message) {
  const e = new Error(message);
  e.name = 'Runtime.' + type;
  return e;
}

function errorBody(err) {
  const body = toRapidResponse(err);
  let json;
  try {
    json = JSON.stringify(body);
  } catch (_) {
    json = JSON.stringify({ errorType: String(body.errorType), errorMessage: String(body.errorMessage), trace: [] });
  }
  // The header takes printable ASCII only; an error's name can be anything.
  return { body: json, type: String(body.errorType).replace(/[^\x20-\x7e]/g, '?') };
}

async function postInitError(err) {
  const { body, type } = errorBody(err);
  logLine('ERROR', 'Init Error \t' + body);
  try {
    await apiPost('/init/error', body, { 'Lambda-Runtime-Function-Error-Type': type });
  } catch (e) {
    logLine('ERROR', `Runtime API unreachable: ${e.message}`);
  }
}

async function postInvokeError(id, err) {
  const { body, type } = errorBody(err);
  logLine('ERROR', 'Invoke Error \t' + body);
  await apiPost(`/invocation/${encodeURIComponent(id)}/error`, body, {
    'Lambda-Runtime-Function-Error-Type': type,
  });
}

async function postResponse(id, result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    return postInvokeError(id, new Error(`Unable to stringify response body: ${e.message}`));
  }
  if (body === undefined) body = 'null'; // a function or symbol
  await apiPost(`/invocation/${encodeURIComponent(id)}/response`, body);
}

function fatal(err) {
  logLine('ERROR', `Runtime API failure: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Loading the handler, as Lambda resolves "dir/module.nested.fn".

function hasPackageTypeModule(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (e) {
        logLine('WARN', `${pj} cannot be read, it is ignored for ES module detection: ${e.message}`);
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch (_) {
    return false;
  }
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  const importFile = (p) => import(pathToFileURL(p).href);
  // Extensionless: a file, or a directory with an index or package.json.
  if (fs.existsSync(base)) return require(base);
  const typeModule = hasPackageTypeModule(path.dirname(base));
  if (isFile(base + '.js')) return typeModule ? importFile(base + '.js') : require(base + '.js');
  if (isFile(base + '.mjs')) return importFile(base + '.mjs');
  if (isFile(base + '.cjs')) return require(base + '.cjs');
  // A package under node_modules, as require finds it from the task root.
  return require(require.resolve(moduleName, { paths: [taskRoot, path.resolve(taskRoot, moduleRoot)] }));
}

async function loadHandler(taskRoot, handlerString) {
  if (!handlerString) {
    throw runtimeError('MalformedHandlerName', 'Bad handler: _HANDLER is empty');
  }
  if (handlerString.includes('..')) {
    throw runtimeError(
      'MalformedHandlerName',
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const moduleAndHandler = path.basename(handlerString);
  const moduleRoot = handlerString.slice(0, handlerString.length - moduleAndHandler.length);
  const match = moduleAndHandler.match(/^([^.]*)\.(.*)$/);
  if (!match) throw runtimeError('MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = match;

  let mod;
  try {
    mod = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) {
      const err = runtimeError('UserCodeSyntaxError', String(e));
      err.stack = e.stack;
      throw err;
    }
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw runtimeError('ImportModuleError', String(e));
    }
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj && obj[key], mod);
  if (!fn) throw runtimeError('HandlerNotFound', `${handlerString} is undefined or not exported`);
  if (typeof fn !== 'function') throw runtimeError('HandlerNotFound', `${handlerString} is not a function`);
  return fn;
}

// ---------------------------------------------------------------------------
// The invoke loop.

// onEmptyLoop runs when the event loop has nothing left to do: how a
// callback waits for an empty event loop, and how a handler that never
// answers is ended, as Lambda does with 'beforeExit'.
let onEmptyLoop = null;
process.on('beforeExit', () => {
  const f = onEmptyLoop;
  onEmptyLoop = null;
  if (f) f();
});

// An uncaught exception or unhandled rejection ends the process (exit 129
// or 128, as Lambda): during init it is the init error, during an
// invocation it fails that invocation, between invocations it is only
// logged (no invocation to fail).
let onUncaught = (err) => postInitError(err).finally(() => process.exit(129));
let onRejection = (err) => postInitError(err).finally(() => process.exit(128));
process.on('uncaughtException', (err) => onUncaught(err));
process.on('unhandledRejection', (reason) => {
  const err = runtimeError('UnhandledPromiseRejection', String(reason));
  if (isErrorLike(reason)) err.stack = reason.stack;
  onRejection(err);
});

function crashBetweenInvocations(code) {
  return (err) => {
    logLine('ERROR', `${code === 129 ? 'Uncaught Exception' : 'Unhandled Promise Rejection'} \t${errorBody(err).body}`);
    process.exit(code);
  };
}

function scheduleNext(handler) {
  setImmediate(() => nextInvocation(handler).catch(fatal));
}

function parseJSONHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new Error(`Cannot parse ${name} as json: ${e}`);
  }
}

async function nextInvocation(handler) {
  const res = await apiRequest('GET', '/invocation/next');
  if (res.status !== 200) throw new Error(`GET next: ${res.status} ${res.body}`);
  const h = res.headers;
  const id = h['lambda-runtime-aws-request-id'];
  if (!id) throw new Error('GET next: no Lambda-Runtime-Aws-Request-Id');
  currentRequestId = id;
  if (h['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  else delete process.env._X_AMZN_TRACE_ID;
  const deadline = Number(h['lambda-runtime-deadline-ms']);

  onUncaught = (err) => postInvokeError(id, err).finally(() => process.exit(129));
  onRejection = (err) => postInvokeError(id, err).finally(() => process.exit(128));

  let finished = false; // the first of callback, done, succeed and fail wins
  let posted = false;
  let waitForEmptyLoop = true;
  const post = (err, result) => {
    if (posted) return;
    posted = true;
    onEmptyLoop = null;
    onUncaught = crashBetweenInvocations(129);
    onRejection = crashBetweenInvocations(128);
    const p = err !== undefined && err !== null ? postInvokeError(id, err) : postResponse(id, result);
    p.then(() => scheduleNext(handler), fatal);
  };
  const once = (f) =>
    function (...args) {
      if (finished) return;
      finished = true;
      f(...args);
    };
  const callback = once((err, result) => {
    if ((err !== undefined && err !== null) || !waitForEmptyLoop) {
      post(err, result);
      return;
    }
    onEmptyLoop = () => setImmediate(() => post(null, result));
  });
  const done = once((err, result) => post(err, result));
  const succeed = once((result) => post(null, result));
  const fail = once((err) => post(err === undefined || err === null ? 'handled' : err, null));
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyLoop = v;
    },
    done,
    succeed,
    fail,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    awsRequestId: id,
    clientContext: undefined,
    identity: undefined,
    getRemainingTimeInMillis() {
      return deadline - Date.now();
    },
  };

  let isPromise = false;
  // A handler that never answers: a promise that never settled fails the
  // invocation; anything else answers null, once the event loop is empty.
  onEmptyLoop = () => {
    finished = true;
    if (isPromise) {
      post(runtimeError('NodeJsExit', 'The event loop is empty but the handler\'s promise has not settled'));
    } else {
      post(null, null);
    }
  };
  try {
    context.clientContext = parseJSONHeader(h['lambda-runtime-client-context'], 'ClientContext');
    context.identity = parseJSONHeader(h['lambda-runtime-cognito-identity'], 'CognitoIdentity');
    const result = handler(JSON.parse(res.body), context, callback);
    if (result && typeof result.then === 'function') {
      isPromise = true;
      result.then(succeed, fail);
    } else if (result !== undefined && handler.length < 3) {
      succeed(result);
    }
  } catch (err) {
    callback(err);
  }
}

async function main() {
  if (!address) {
    process.stderr.write('hostless node shim: AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  try {
    process.chdir(taskRoot);
  } catch (_) {
    // Loading the module below says what is wrong with the directory.
  }
  globalThis.awslambda = {
    streamifyResponse() {
      throw runtimeError('MalformedStreamingHandler', 'response streaming is not supported by Hostless');
    },
  };
  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER);
  } catch (err) {
    await postInitError(err);
    process.exit(1);
  }
  scheduleNext(handler);
}

main();
