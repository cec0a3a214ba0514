// go-headers: a request plugin written with the Go SDK and built with the standard Go
// toolchain. Per request it counts in shared data (initialised once, in OnVMStart), tells the
// upstream the count, sleeps or panics when the request asks it to, and enqueues the request's
// path on a shared queue when configured to; it marks every response.
package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The shared data key of the request counter (shared by every plugin of the vm id).
const counterKey = "go-headers/requests"

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct {
	types.DefaultVMContext
}

// OnVMStart sets the counter to zero, as plugins written for Envoy do: every instance starts
// before traffic arrives, so this never resets a count in progress.
func (*vm) OnVMStart(int) types.OnVMStartStatus {
	if err := proxywasm.SetSharedData(counterKey, []byte("0"), 0); err != nil {
		proxywasm.LogCriticalf("cannot initialise the counter: %v", err)
		return false
	}
	proxywasm.LogInfo("go-headers: counter initialised")
	return true
}

func (*vm) NewPluginContext(uint32) types.PluginContext {
	return &plugin{}
}

// config is the plugin's configuration (JSON, every field optional).
type config struct {
	// Queue, if set, receives the path of every request (resolved under QueueVM, default the
	// plugin's own vm id).
	Queue   string `json:"queue"`
	QueueVM string `json:"queue_vm"`
}

type plugin struct {
	types.DefaultPluginContext
	conf  config
	queue uint32
}

func (p *plugin) OnPluginStart(size int) types.OnPluginStartStatus {
	if size > 0 {
		data, err := proxywasm.GetPluginConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("cannot read the configuration: %v", err)
			return false
		}
		if err := json.Unmarshal(data, &p.conf); err != nil {
			proxywasm.LogErrorf("invalid configuration: %v", err)
			return false
		}
	}
	return true
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext {
	return &stream{plugin: p}
}

type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	count  int
}

// next adds one to the shared counter (compare-and-swap, retried on a conflict).
func next() (int, error) {
	for {
		data, cas, err := proxywasm.GetSharedData(counterKey)
		if err != nil {
			return 0, err
		}
		n, _ := strconv.Atoi(string(data))
		n++
		err = proxywasm.SetSharedData(counterKey, []byte(strconv.Itoa(n)), cas)
		if err == nil {
			return n, nil
		}
		if err != types.ErrorStatusCasMismatch {
			return 0, err
		}
	}
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if msg, err := proxywasm.GetHttpRequestHeader("x-go-panic"); err == nil {
		panic("go-headers: " + msg)
	}
	if ms, err := proxywasm.GetHttpRequestHeader("x-go-sleep-ms"); err == nil {
		d, _ := strconv.Atoi(ms)
		started := time.Now()
		time.Sleep(time.Duration(d) * time.Millisecond)
		slept := time.Since(started).Milliseconds()
		_ = proxywasm.AddHttpRequestHeader("x-go-slept-ms", strconv.FormatInt(slept, 10))
	}
	n, err := next()
	if err != nil {
		proxywasm.LogErrorf("counter: %v", err)
	}
	s.count = n
	_ = proxywasm.AddHttpRequestHeader("x-go-count", strconv.Itoa(n))
	if q := s.plugin.conf.Queue; q != "" {
		s.enqueue(q)
	}
	return types.ActionContinue
}

// enqueue sends the request's path to the configured queue, resolving it on first use.
func (s *stream) enqueue(name string) {
	p := s.plugin
	if p.queue == 0 {
		id, err := proxywasm.ResolveSharedQueue(p.conf.QueueVM, name)
		if err != nil {
			proxywasm.LogWarnf("queue %s not found: %v", name, err)
			return
		}
		p.queue = id
	}
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	if err := proxywasm.EnqueueSharedQueue(p.queue, []byte(path)); err != nil {
		proxywasm.LogWarnf("enqueue on %s: %v", name, err)
	}
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-go-sdk", "go")
	_ = proxywasm.AddHttpResponseHeader("x-go-count", strconv.Itoa(s.count))
	return types.ActionContinue
}
