;; A plugin whose `proxy_on_configure` takes 60 ms of wall time (the time read through the host):
;; longer than a request hook's cap, well inside the start-up budget.
(module
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (local $until i64)
    (drop (call $now (i32.const 0)))
    (local.set $until (i64.add (i64.load (i32.const 0)) (i64.const 60000000)))
    (loop $spin
      (drop (call $now (i32.const 0)))
      (br_if $spin (i64.lt_u (i64.load (i32.const 0)) (local.get $until))))
    (i32.const 1)))
