;; A plugin that keeps working on a stream after it ended: `proxy_on_done` returns false, and
;; the stream is deleted only once the plugin calls `proxy_done` for it. The second stream
;; (context 3) does so for the first (context 2) from its request-headers callback.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "deleted 2deleted 3")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eq (local.get $ctx) (i32.const 3))
      (then
        (drop (call $effective (i32.const 2)))
        (drop (call $done))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32)
    (i32.const 0))
  (func (export "proxy_on_delete") (param $ctx i32)
    ;; "deleted 2" or "deleted 3": 9 bytes at 0 or 9.
    (drop (call $log (i32.const 2)
      (i32.mul (i32.sub (local.get $ctx) (i32.const 2)) (i32.const 9))
      (i32.const 9)))))
