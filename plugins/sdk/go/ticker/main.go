// go-ticker: a background plugin (a root context only) written with the Go SDK. Every tick it
// counts in shared data and calls a cluster; on the tick its configuration names it panics once
// (remembered in shared data, so its replacement does not), to show that a trapped background
// instance is replaced and ticks on.
package main

import (
	"encoding/json"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &ticker{} })
}

type config struct {
	PeriodMs   uint32 `json:"period_ms"`
	Cluster    string `json:"cluster"`
	Path       string `json:"path"`
	TrapOnTick int    `json:"trap_on_tick"`
}

type ticker struct {
	types.DefaultPluginContext
	conf  config
	ticks int
}

const (
	ticksKey   = "go-ticker/ticks"
	trappedKey = "go-ticker/trapped"
)

func (t *ticker) OnPluginStart(size int) types.OnPluginStartStatus {
	t.conf = config{PeriodMs: 100, Path: "/"}
	if size > 0 {
		data, err := proxywasm.GetPluginConfiguration()
		if err == nil {
			err = json.Unmarshal(data, &t.conf)
		}
		if err != nil {
			proxywasm.LogErrorf("invalid configuration: %v", err)
			return false
		}
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(t.conf.PeriodMs); err != nil {
		proxywasm.LogCriticalf("cannot set the tick period: %v", err)
		return false
	}
	proxywasm.LogInfof("go-ticker: ticking every %d ms", t.conf.PeriodMs)
	return true
}

func (t *ticker) OnTick() {
	t.ticks++
	total := t.count()
	if t.ticks == t.conf.TrapOnTick {
		if _, _, err := proxywasm.GetSharedData(trappedKey); err != nil {
			_ = proxywasm.SetSharedData(trappedKey, []byte("1"), 0)
			panic("go-ticker: trap on tick " + strconv.Itoa(t.ticks))
		}
	}
	if t.conf.Cluster == "" {
		return
	}
	headers := [][2]string{
		{":method", "GET"},
		{":path", t.conf.Path + "?tick=" + strconv.Itoa(total)},
		{":authority", t.conf.Cluster},
	}
	_, err := proxywasm.DispatchHttpCall(t.conf.Cluster, headers, nil, nil, 1000,
		func(int, int, int) {
			status := "?"
			headers, _ := proxywasm.GetHttpCallResponseHeaders()
			for _, h := range headers {
				if h[0] == ":status" {
					status = h[1]
				}
			}
			proxywasm.LogInfof("go-ticker: tick %d answered %s", total, status)
		})
	if err != nil {
		proxywasm.LogWarnf("go-ticker: call failed: %v", err)
	}
}

// count adds one to the ticks of every instance so far, in shared data.
func (t *ticker) count() int {
	for {
		data, cas, _ := proxywasm.GetSharedData(ticksKey)
		n, _ := strconv.Atoi(string(data))
		n++
		err := proxywasm.SetSharedData(ticksKey, []byte(strconv.Itoa(n)), cas)
		if err != types.ErrorStatusCasMismatch {
			return n
		}
	}
}
