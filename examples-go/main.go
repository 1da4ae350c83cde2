// offline_download: create a 123pan offline download task from Go (cgo), follow it to the end
// with a progress callback written in Go, and print failures with their code, the server's
// code and the trace ID.
//
//	PAN_TOKEN=... go run . https://example.com/a.mp4
//	PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... go run . https://example.com/a.mp4
//	PAN_TOKEN_COMMAND='vault read -field=token pan' go run . https://example.com/a.mp4
//
// PAN_TOKEN_COMMAND is a token source (pan_client_set_token_source, a Go function exported to
// C): a shell command run when the library needs a token, with PAN_TOKEN_REASON set to
// "needed" or "refused", that prints the token and optionally its expiry (Unix seconds).
// Runs share the token and the pacing through the client's `sharedState`: --state DIR, else
// $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline (~/.local/state/pan-offline when
// XDG_STATE_HOME is unset, empty or not absolute); --no-state: none.
//
// The library is found with pkg-config (the pan_offline.pc that `cargo cinstall` installs):
// set PKG_CONFIG_PATH to <prefix>/lib/pkgconfig, and LD_LIBRARY_PATH to <prefix>/lib when the
// prefix is not a system one. The base URL is $PAN_API_BASE_URL or https://open-api.123pan.com.
// Exit status: 0 succeeded; 3 the download failed; 1 an error; 2 bad usage.
package main

/*
#cgo pkg-config: pan_offline
#include <stdlib.h>
#include "pan_offline.h"

// Defined in Go below (//export goProgress, goTokenSource); cgo makes them C functions.
int32_t goProgress(void *user_data, int64_t task_id, double progress, int32_t status);
void goTokenSource(void *user_data, int32_t reason, pan_token_reply *reply);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"unsafe"
)

const usage = `usage: %s [--state DIR | --no-state] URL
credentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET, or PAN_TOKEN_COMMAND
shared state: --state DIR, else $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline
  (~/.local/state/pan-offline when XDG_STATE_HOME is unset, empty or not absolute); --no-state: none
`

// panError is a failed call: the PAN_ERR_* status, the library's message, the service's `code`
// (0 if none) and the request's trace ID. Read on the thread that made the call.
type panError struct {
	Status  int32
	Message string
	APICode int64
	TraceID string
}

func (e *panError) Error() string {
	return fmt.Sprintf("error %d (%s): %s", e.Status, C.GoString(C.pan_strerror(C.int32_t(e.Status))), e.Message)
}

func lastError(rc C.int32_t) error {
	if rc == C.PAN_OK {
		return nil
	}
	return &panError{int32(rc), C.GoString(C.pan_last_error_message()),
		int64(C.pan_last_api_code()), C.GoString(C.pan_last_trace_id())}
}

// progress is what the wait reports to: a Go value reached from C through a cgo.Handle.
type progress struct{ polls int }

//export goProgress
func goProgress(userData unsafe.Pointer, taskID C.int64_t, pct C.double, status C.int32_t) C.int32_t {
	p := (*(*cgo.Handle)(userData)).Value().(*progress)
	p.polls++
	names := map[C.int32_t]string{C.PAN_TASK_DOWNLOADING: "downloading", C.PAN_TASK_FAILED: "failed",
		C.PAN_TASK_SUCCEEDED: "succeeded", C.PAN_TASK_RETRYING: "retrying"}
	fmt.Printf("task %d: %6.2f%% %s\n", int64(taskID), float64(pct), names[status])
	return 0 // non-zero would stop the wait with PAN_ERR_CANCELLED
}

// tokenCommand is PAN_TOKEN_COMMAND: one token source per process, so the library's
// user_data is not needed.
var tokenCommand string

// goTokenSource is the client's token source: it runs tokenCommand, which prints
// "TOKEN [EXPIRES_AT]". It runs on the thread of the call that needs the token; a failure
// (even a panic, which must not unwind into C) is a pan_token_reply_fail.
//
//export goTokenSource
func goTokenSource(userData unsafe.Pointer, reason C.int32_t, reply *C.pan_token_reply) {
	fail := func(why string) {
		msg := C.CString("PAN_TOKEN_COMMAND failed: " + why)
		defer C.free(unsafe.Pointer(msg))
		C.pan_token_reply_fail(reply, msg)
	}
	defer func() {
		if r := recover(); r != nil {
			fail(fmt.Sprint(r))
		}
	}()
	why := "needed"
	if reason == C.PAN_TOKEN_REFUSED {
		why = "refused"
	}
	cmd := exec.Command("/bin/sh", "-c", tokenCommand)
	cmd.Env, cmd.Stderr = append(os.Environ(), "PAN_TOKEN_REASON="+why), os.Stderr
	out, err := cmd.Output()
	fields := strings.Fields(string(out))
	if err != nil {
		fail(err.Error()) // "exit status 3": not the command line, which may hold a secret
		return
	}
	if len(fields) == 0 {
		fail("it printed no token")
		return
	}
	var expiresAt int64
	if len(fields) > 1 {
		expiresAt, _ = strconv.ParseInt(fields[1], 10, 64)
	}
	token := C.CString(fields[0])
	defer C.free(unsafe.Pointer(token))
	if C.pan_token_reply_set(reply, token, C.int64_t(expiresAt)) != C.PAN_OK {
		fail("it printed an unusable token: " + C.GoString(C.pan_last_error_message()))
	}
}

// defaultState is the shared state without --state or --no-state: $PAN_SHARED_STATE, else
// $XDG_STATE_HOME/pan-offline per the XDG base directory spec (a relative or empty
// XDG_STATE_HOME is ignored), its base made 0700; ok is false for none.
func defaultState() (state string, ok bool) {
	if s := os.Getenv("PAN_SHARED_STATE"); s != "" {
		return s, true
	}
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil || !filepath.IsAbs(home) {
			return "", false
		}
		base = filepath.Join(home, ".local", "state")
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "warning: no shared state (%v); going on without it\n", err)
		return "", false
	}
	return filepath.Join(base, "pan-offline"), true // the library makes it, 0700
}

func run(url string, state string, useState bool) int {
	// The library keeps the last error per OS thread (pan_last_error_*): a goroutine may move
	// between threads from one cgo call to the next, so it stays on this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The library's own JSON names: options and configuration are JSON strings.
	config := map[string]string{}
	token := os.Getenv("PAN_TOKEN")
	tokenCommand = os.Getenv("PAN_TOKEN_COMMAND")
	if token == "" && tokenCommand == "" {
		config["clientID"], config["clientSecret"] = os.Getenv("PAN_CLIENT_ID"), os.Getenv("PAN_CLIENT_SECRET")
	}
	if useState {
		config["sharedState"] = state
	}
	configJSON, _ := json.Marshal(config)
	cConfig := C.CString(string(configJSON))
	defer C.free(unsafe.Pointer(cConfig))
	client := C.pan_client_new(cConfig)
	if client == nil {
		fmt.Fprintln(os.Stderr, "create client failed:", lastError(C.pan_last_error_code()))
		return 1
	}
	defer C.pan_client_free(client)
	if token == "" && tokenCommand != "" {
		rc := C.pan_client_set_token_source(client, C.pan_token_source_callback(C.goTokenSource), nil)
		if err := lastError(rc); err != nil {
			report("set the token source", err)
			return 1
		}
	}
	var cToken *C.char // NULL: the client's own token (clientID/clientSecret)
	if token != "" {
		cToken = C.CString(token)
		defer C.free(unsafe.Pointer(cToken))
	}

	opts, _ := json.Marshal(map[string]any{"url": url})
	cOpts := C.CString(string(opts))
	defer C.free(unsafe.Pointer(cOpts))
	var taskID C.int64_t
	if err := lastError(C.pan_client_offline_download(client, cToken, cOpts, &taskID)); err != nil {
		report("create offline download task", err)
		return 1
	}
	fmt.Printf("task %d created (trace ID %s)\n", int64(taskID), C.GoString(C.pan_last_trace_id()))

	p := &progress{}
	h := cgo.NewHandle(p)
	defer h.Delete()
	var status C.int32_t
	rc := C.pan_offline_download_wait(client, cToken, taskID, -1,
		C.pan_progress_callback(C.goProgress), unsafe.Pointer(&h), &status)
	if err := lastError(rc); err != nil {
		report("wait for the task", err)
		return 1
	}
	if status != C.PAN_TASK_SUCCEEDED {
		fmt.Printf("task %d failed after %d polls\n", int64(taskID), p.polls)
		return 3
	}
	fmt.Printf("task %d succeeded after %d polls\n", int64(taskID), p.polls)
	return 0
}

func report(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s failed: %v\n", what, err)
	if e, ok := err.(*panError); ok {
		if e.APICode != 0 {
			fmt.Fprintf(os.Stderr, "  server code: %d\n", e.APICode)
		}
		if e.TraceID != "" {
			fmt.Fprintf(os.Stderr, "  trace ID: %s\n", e.TraceID)
		}
	}
}

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--help" || os.Args[1] == "-h") {
		fmt.Printf(usage, os.Args[0])
		return
	}
	// [--state DIR | --no-state] URL, in any order (as the C example takes them).
	url, state, stateSet, noState, bad := "", "", false, false, false
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; {
		case a == "--state" && i+1 < len(os.Args) && !stateSet:
			i++
			state, stateSet = os.Args[i], true
		case a == "--no-state":
			noState = true
		case !strings.HasPrefix(a, "-") && url == "":
			url = a
		default:
			bad = true
		}
	}
	credentials := os.Getenv("PAN_TOKEN") != "" || os.Getenv("PAN_TOKEN_COMMAND") != "" ||
		(os.Getenv("PAN_CLIENT_ID") != "" && os.Getenv("PAN_CLIENT_SECRET") != "")
	if bad || url == "" || (stateSet && noState) || !credentials {
		fmt.Fprintf(os.Stderr, usage, os.Args[0])
		os.Exit(2)
	}
	useState := stateSet
	if !stateSet && !noState {
		state, useState = defaultState()
	}
	os.Exit(run(url, state, useState))
}
