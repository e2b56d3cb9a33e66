;; A router that answers a malformed connection name ("not valid": a space).
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "not valid")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0x0000001000000009))
