;; A valid WebAssembly module that is not a dbroute router: no
;; dbroute_abi_version.
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
