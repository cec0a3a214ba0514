// go-receiver: a background plugin written with the Go SDK that registers the shared queues
// its configuration names and logs every item enqueued on them (by plugins of the same vm id).
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext {
		return &receiver{names: map[uint32]string{}}
	})
}

type receiver struct {
	types.DefaultPluginContext
	names map[uint32]string
}

func (r *receiver) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	var conf struct {
		Queues []string `json:"queues"`
	}
	if err == nil {
		err = json.Unmarshal(data, &conf)
	}
	if err != nil {
		proxywasm.LogErrorf("invalid configuration: %v", err)
		return false
	}
	for _, name := range conf.Queues {
		id, err := proxywasm.RegisterSharedQueue(name)
		if err != nil {
			proxywasm.LogCriticalf("cannot register queue %s: %v", name, err)
			return false
		}
		r.names[id] = name
		proxywasm.LogInfof("go-receiver: registered %s", name)
	}
	return true
}

func (r *receiver) OnQueueReady(id uint32) {
	for {
		item, err := proxywasm.DequeueSharedQueue(id)
		if err == types.ErrorStatusEmpty {
			return
		}
		if err != nil {
			proxywasm.LogErrorf("dequeue from %s: %v", r.names[id], err)
			return
		}
		proxywasm.LogInfof("go-receiver: %s on %s", string(item), r.names[id])
	}
}
