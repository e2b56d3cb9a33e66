;; Reads go to "replica"; every write is refused with a message.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "replica")
  (data (i32.const 64) "writes to archived models are forbidden")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000007)
  ;; the sign bit, then 39 message bytes at 64
  (func (export "db_for_write") (param i32 i32) (result i64)
    i64.const 0x0000004000000027
    i64.const 0x8000000000000000
    i64.or))
