;; Traps in the request-headers callback of the instance's second stream (context 3), and logs
;; "deleted" from every `proxy_on_delete` of a stream: a context that is never ended never logs
;; it. (The host's load-time probe, context 2147483647, logs nothing.)
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "deleted")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eq (local.get $ctx) (i32.const 3)) (then unreachable))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (i32.const 0))
  (func (export "proxy_on_delete") (param $ctx i32)
    (if (i32.ne (local.get $ctx) (i32.const 2147483647))
      (then (drop (call $log (i32.const 2) (i32.const 0) (i32.const 7)))))))
