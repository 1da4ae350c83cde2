// offline_download: create a 123pan offline download task from Go (cgo), follow it to the end
// with a progress callback written in Go, and print failures with their code, the server's
// code and the trace ID.
//
//	PAN_TOKEN=... go run . https://example.com/a.mp4
//	PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... go run . https://example.com/a.mp4
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

// Defined in Go below (//export goProgress); cgo makes it a C function.
int32_t goProgress(void *user_data, int64_t task_id, double progress, int32_t status);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

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

func run(url string) int {
	// The library keeps the last error per OS thread (pan_last_error_*): a goroutine may move
	// between threads from one cgo call to the next, so it stays on this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The library's own JSON names: options and configuration are JSON strings.
	config := map[string]string{}
	token := os.Getenv("PAN_TOKEN")
	if token == "" {
		config["clientID"], config["clientSecret"] = os.Getenv("PAN_CLIENT_ID"), os.Getenv("PAN_CLIENT_SECRET")
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
		fmt.Printf("usage: %s URL\ncredentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET\n", os.Args[0])
		return
	}
	if len(os.Args) != 2 || (os.Getenv("PAN_TOKEN") == "" && (os.Getenv("PAN_CLIENT_ID") == "" || os.Getenv("PAN_CLIENT_SECRET") == "")) {
		fmt.Fprintf(os.Stderr, "usage: %s URL\ncredentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET\n", os.Args[0])
		os.Exit(2)
	}
	os.Exit(run(os.Args[1]))
}
