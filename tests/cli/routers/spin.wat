;; A router whose db_for_read never returns.
(module
  (memory (export "memory") 1)
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  (func (export "db_for_read") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    unreachable))
