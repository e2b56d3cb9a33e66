;; A router that imports WASI: refused, routers get no system access.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))
