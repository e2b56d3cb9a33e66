;; A well-formed router: reads go to "replica", writes to "default". It also
;; exports dbroute_init (accepting any config) and declares itself
;; deterministic.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (data (i32.const 32) "default")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_deterministic") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "dbroute_init") (param i32 i32) (result i64) i64.const 0)
  ;; "replica": 7 bytes at 16
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000007)
  ;; "default": 7 bytes at 32
  (func (export "db_for_write") (param i32 i32) (result i64) i64.const 0x0000002000000007))
