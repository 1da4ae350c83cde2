// offline_download: create a 123pan offline download task from Node.js (koffi, an FFI package
// from npm), follow it to the end with a progress callback written in JavaScript, and print
// failures with their code, the server's code and the trace ID.
//
//   PAN_TOKEN=... node offline_download.js https://example.com/a.mp4
//   PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... node offline_download.js https://example.com/a.mp4
//   PAN_TOKEN_COMMAND='vault read -field=token pan' node offline_download.js https://example.com/a.mp4
//
// PAN_TOKEN_COMMAND is a token source (pan_client_set_token_source, a registered koffi
// callback): a shell command run when the library needs a token, with PAN_TOKEN_REASON set to
// "needed" or "refused", that prints the token and optionally its expiry (Unix seconds).
// Runs share the token and the pacing through the client's `sharedState`: --state DIR, else
// $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline (~/.local/state/pan-offline when
// XDG_STATE_HOME is unset, empty or not absolute); --no-state: none.
// The library is $PAN_OFFLINE_LIB, or libpan_offline.so from the system's library path. The
// base URL is $PAN_API_BASE_URL or https://open-api.123pan.com.
// Exit status: 0 succeeded; 3 the download failed; 1 an error; 2 bad usage.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const koffi = require('koffi');

const lib = koffi.load(process.env.PAN_OFFLINE_LIB || 'libpan_offline.so');
// The declarations are the header's, as koffi parses C prototypes.
koffi.opaque('pan_client');
koffi.opaque('pan_token_reply');
const ProgressCallback = koffi.proto(
  'int32_t pan_progress_callback(void *user_data, int64_t task_id, double progress, int32_t status)');
const TokenSourceCallback = koffi.proto(
  'void pan_token_source_callback(void *user_data, int32_t reason, pan_token_reply *reply)');
const pan = {
  client_new: lib.func('pan_client *pan_client_new(const char *config_json)'),
  client_free: lib.func('void pan_client_free(pan_client *client)'),
  offline_download: lib.func(
    'int32_t pan_client_offline_download(pan_client *client, const char *token, const char *json_opts, _Out_ int64_t *task_id_out)'),
  wait: lib.func(
    'int32_t pan_offline_download_wait(pan_client *client, const char *token, int64_t task_id, int64_t timeout_ms, pan_progress_callback *on_progress, void *user_data, _Out_ int32_t *status_out)'),
  set_token_source: lib.func(
    'int32_t pan_client_set_token_source(pan_client *client, pan_token_source_callback *cb, void *user_data)'),
  token_reply_set: lib.func('int32_t pan_token_reply_set(pan_token_reply *reply, const char *token, int64_t expires_at)'),
  token_reply_fail: lib.func('int32_t pan_token_reply_fail(pan_token_reply *reply, const char *message)'),
  last_error_code: lib.func('int32_t pan_last_error_code(void)'),
  last_error_message: lib.func('const char *pan_last_error_message(void)'),
  last_api_code: lib.func('int64_t pan_last_api_code(void)'),
  last_trace_id: lib.func('const char *pan_last_trace_id(void)'),
  strerror: lib.func('const char *pan_strerror(int32_t code)'),
};
const PAN_OK = 0;
const TASK = ['downloading', 'failed', 'succeeded', 'retrying'];
const PAN_TASK_SUCCEEDED = 2;
const PAN_TOKEN_REFUSED = 1; // PAN_TOKEN_NEEDED is 0
const USAGE = 'usage: node offline_download.js [--state DIR | --no-state] URL\n' +
  'credentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET, or PAN_TOKEN_COMMAND\n' +
  'shared state: --state DIR, else $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline\n' +
  '  (~/.local/state/pan-offline when XDG_STATE_HOME is unset, empty or not absolute); --no-state: none';

// A failed call: the PAN_ERR_* status, the library's message, the service's `code` (0 if none)
// and the request's trace ID, read right after the call (the library keeps them per thread).
class PanError extends Error {
  constructor(what, status) {
    super(`${what} failed: error ${status} (${pan.strerror(status)}): ${pan.last_error_message()}`);
    this.status = status;
    this.apiCode = pan.last_api_code();
    this.traceId = pan.last_trace_id();
  }
}

function check(what, rc) {
  if (rc !== PAN_OK) throw new PanError(what, rc);
}

// The default shared state: $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline per the XDG
// base directory spec (a relative or empty XDG_STATE_HOME is ignored), its base made 0700.
function defaultState() {
  if (process.env.PAN_SHARED_STATE) return process.env.PAN_SHARED_STATE;
  let base = process.env.XDG_STATE_HOME || '';
  if (!path.isAbsolute(base)) {
    const home = os.homedir();
    if (!path.isAbsolute(home)) return null;
    base = path.join(home, '.local', 'state');
  }
  try {
    fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  } catch (e) {
    console.error(`warning: no shared state (${e.message}); going on without it`);
    return null;
  }
  return path.join(base, 'pan-offline'); // the library makes it, 0700
}

// Parses [--state DIR | --no-state] URL, in any order (as the C example takes them); null for
// bad usage.
function parseArgs(argv) {
  const args = { url: null, state: undefined }; // undefined: the default; null: none
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--no-state' && args.state === undefined) args.state = null;
    else if (argv[i] === '--state' && args.state === undefined && i + 1 < argv.length) args.state = argv[++i];
    else if (!argv[i].startsWith('-') && args.url === null) args.url = argv[i];
    else return null;
  }
  return args.url === null ? null : args;
}

// A token source: runs `command` (PAN_TOKEN_COMMAND), which prints "TOKEN [EXPIRES_AT]". A
// registered callback, since the library keeps it; it runs on the thread of the call that
// needs the token (this one), and must not throw into C: a failure is a pan_token_reply_fail.
function tokenSourceFromCommand(command) {
  return koffi.register((_user, reason, reply) => {
    try {
      const out = execFileSync('/bin/sh', ['-c', command], {
        encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PAN_TOKEN_REASON: reason === PAN_TOKEN_REFUSED ? 'refused' : 'needed' },
      });
      const [token, expiresAt] = out.trim().split(/\s+/);
      if (!token) throw new Error('it printed no token');
      if (pan.token_reply_set(reply, token, Number(expiresAt) || 0) !== PAN_OK)
        throw new Error(`it printed an unusable token: ${pan.last_error_message()}`);
    } catch (e) {
      // Not the command line itself, which may hold a secret.
      const why = typeof e.status === 'number' ? `exit status ${e.status}` : e.signal ? `killed by ${e.signal}` : e.message;
      pan.token_reply_fail(reply, `PAN_TOKEN_COMMAND failed: ${why}`);
    }
  }, koffi.pointer(TokenSourceCallback));
}

function main(argv) {
  const token = process.env.PAN_TOKEN || null; // null: the client's own token
  const command = process.env.PAN_TOKEN_COMMAND || null;
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseArgs(argv);
  if (args === null || (!token && !command && !(process.env.PAN_CLIENT_ID && process.env.PAN_CLIENT_SECRET))) {
    console.error(USAGE);
    return 2;
  }
  const config = token || command ? {} : { clientID: process.env.PAN_CLIENT_ID, clientSecret: process.env.PAN_CLIENT_SECRET };
  const state = args.state === undefined ? defaultState() : args.state;
  if (state !== null) config.sharedState = state;
  const client = pan.client_new(JSON.stringify(config));
  if (client === null) throw new PanError('create client', pan.last_error_code());
  let source = null;
  try {
    if (!token && command) {
      source = tokenSourceFromCommand(command);
      check('set the token source', pan.set_token_source(client, source, null));
    }
    const taskId = [0];
    check('create offline download task',
      pan.offline_download(client, token, JSON.stringify({ url: args.url }), taskId));
    console.log(`task ${taskId[0]} created (trace ID ${pan.last_trace_id()})`);

    // A transient callback: valid while pan_offline_download_wait runs, which is all it needs.
    let polls = 0;
    const status = [0];
    check('wait for the task', pan.wait(client, token, taskId[0], -1, (_user, id, pct, st) => {
      polls++;
      console.log(`task ${id}: ${pct.toFixed(2).padStart(6)}% ${TASK[st] || 'unknown'}`);
      return 0; // non-zero would stop the wait with PAN_ERR_CANCELLED
    }, null, status));
    const ok = status[0] === PAN_TASK_SUCCEEDED;
    console.log(`task ${taskId[0]} ${ok ? 'succeeded' : 'failed'} after ${polls} polls`);
    return ok ? 0 : 3;
  } finally {
    pan.client_free(client);
    if (source !== null) koffi.unregister(source); // after the free: no call can ask it now
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof PanError)) throw e;
  console.error(e.message);
  if (e.apiCode) console.error(`  server code: ${e.apiCode}`);
  if (e.traceId) console.error(`  trace ID: ${e.traceId}`);
  process.exitCode = 1;
}
