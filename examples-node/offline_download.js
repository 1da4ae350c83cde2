// offline_download: create a 123pan offline download task from Node.js (koffi, an FFI package
// from npm), follow it to the end with a progress callback written in JavaScript, and print
// failures with their code, the server's code and the trace ID.
//
//   PAN_TOKEN=... node offline_download.js https://example.com/a.mp4
//   PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... node offline_download.js https://example.com/a.mp4
//
// The library is $PAN_OFFLINE_LIB, or libpan_offline.so from the system's library path. The
// base URL is $PAN_API_BASE_URL or https://open-api.123pan.com.
// Exit status: 0 succeeded; 3 the download failed; 1 an error; 2 bad usage.
'use strict';
const koffi = require('koffi');

const lib = koffi.load(process.env.PAN_OFFLINE_LIB || 'libpan_offline.so');
// The declarations are the header's, as koffi parses C prototypes.
koffi.opaque('pan_client');
const ProgressCallback = koffi.proto(
  'int32_t pan_progress_callback(void *user_data, int64_t task_id, double progress, int32_t status)');
const pan = {
  client_new: lib.func('pan_client *pan_client_new(const char *config_json)'),
  client_free: lib.func('void pan_client_free(pan_client *client)'),
  offline_download: lib.func(
    'int32_t pan_client_offline_download(pan_client *client, const char *token, const char *json_opts, _Out_ int64_t *task_id_out)'),
  wait: lib.func(
    'int32_t pan_offline_download_wait(pan_client *client, const char *token, int64_t task_id, int64_t timeout_ms, pan_progress_callback *on_progress, void *user_data, _Out_ int32_t *status_out)'),
  last_error_code: lib.func('int32_t pan_last_error_code(void)'),
  last_error_message: lib.func('const char *pan_last_error_message(void)'),
  last_api_code: lib.func('int64_t pan_last_api_code(void)'),
  last_trace_id: lib.func('const char *pan_last_trace_id(void)'),
  strerror: lib.func('const char *pan_strerror(int32_t code)'),
};
const PAN_OK = 0;
const TASK = ['downloading', 'failed', 'succeeded', 'retrying'];
const PAN_TASK_SUCCEEDED = 2;

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

function main(argv) {
  const token = process.env.PAN_TOKEN || null; // null: the client's own token
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    console.log('usage: node offline_download.js URL\ncredentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET');
    return 0;
  }
  if (argv.length !== 1 || (!token && !(process.env.PAN_CLIENT_ID && process.env.PAN_CLIENT_SECRET))) {
    console.error('usage: node offline_download.js URL\ncredentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET');
    return 2;
  }
  const config = token ? {} : { clientID: process.env.PAN_CLIENT_ID, clientSecret: process.env.PAN_CLIENT_SECRET };
  const client = pan.client_new(JSON.stringify(config));
  if (client === null) throw new PanError('create client', pan.last_error_code());
  try {
    const taskId = [0];
    check('create offline download task',
      pan.offline_download(client, token, JSON.stringify({ url: argv[0] }), taskId));
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
