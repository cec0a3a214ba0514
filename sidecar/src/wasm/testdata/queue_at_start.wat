;; A plugin that registers a shared queue while it starts (`proxy_on_vm_start`) and enqueues
;; on it from a request: `proxy_on_queue_ready` must reach it.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue"
    (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: the queue's name; 8: "ready"; 16: the queue id.
  (data (i32.const 0) "jobs")
  (data (i32.const 8) "ready")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.eqz (call $register (i32.const 0) (i32.const 4) (i32.const 16))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $enqueue (i32.load (i32.const 16)) (i32.const 0) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (drop (call $log (i32.const 2) (i32.const 8) (i32.const 5)))))
