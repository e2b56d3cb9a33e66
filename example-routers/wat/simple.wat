;; The simplest dbroute router, written by hand in WebAssembly text: reads
;; go to `replica`, writes to `default`, whatever the model, the hints or the
;; configuration.
;;
;; It is NOT the whole reference policy (no `Event` on `analytics`, no
;; tenant map, no refusal of `readonly` writes, no allow_migrate): it shows
;; the ABI with nothing in the way. The conformance suite runs it on the
;; subset of example-routers/reference-cases.json it implements (see
;; "subsets" there). docs/routers/wat.md tells how to try it.
;;
;; No build step: the host compiles WAT text itself (`wat2wasm simple.wat`
;; makes the binary, if one is wanted).
(module
  (memory (export "memory") 1)

  ;; The two connection names the router answers (at fixed places).
  (data (i32.const 16) "replica")
  (data (i32.const 32) "default")

  (func (export "dbroute_abi_version") (result i32)
    i32.const 1)

  ;; Answers depend on nothing but the input: the host may cache them.
  (func (export "dbroute_deterministic") (result i32)
    i32.const 1)

  ;; The input is written at 1024, after the names; memory grows to hold
  ;; it. 0 when it cannot.
  (func (export "dbroute_input") (param $len i32) (result i32)
    (local $pages i32)
    ;; pages needed: (1024 + len + 65535) / 65536, len being below 2 GiB
    (local.set $pages
      (i32.div_u
        (i32.add (local.get $len) (i32.const 66559))
        (i32.const 65536)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq
              (memory.grow (i32.sub (local.get $pages) (memory.size)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    i32.const 1024)

  ;; A connection name is returned as (pointer << 32) | length:
  ;; "replica" is 7 bytes at 16.
  (func (export "db_for_read") (param i32 i32) (result i64)
    i64.const 0x0000001000000007)

  ;; "default" is 7 bytes at 32.
  (func (export "db_for_write") (param i32 i32) (result i64)
    i64.const 0x0000002000000007))
