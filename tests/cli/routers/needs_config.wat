;; A router whose dbroute_init refuses unless its config mentions "mode":
;; `--config` must reach dbroute_init.
(module
  (memory (export "memory") 1)
  (data (i32.const 100) "\"mode\"")
  (data (i32.const 200) "config must set \"mode\"")
  (func (export "dbroute_abi_version") (result i32) i32.const 1)
  (func (export "dbroute_input") (param i32) (result i32) i32.const 1024)
  ;; 1 when the `nlen` bytes at `needle` occur in the `hlen` bytes at `hay`.
  (func $contains (param $hay i32) (param $hlen i32) (param $needle i32) (param $nlen i32) (result i32)
    (local $i i32) (local $j i32)
    (block $absent
      (loop $next_start
        (br_if $absent (i32.gt_u (i32.add (local.get $i) (local.get $nlen)) (local.get $hlen)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $next_byte
            (if (i32.eq (local.get $j) (local.get $nlen)) (then (return (i32.const 1))))
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (local.get $hay) (i32.add (local.get $i) (local.get $j))))
                (i32.load8_u (i32.add (local.get $needle) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $next_byte)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_start)))
    (i32.const 0))

  (func (export "dbroute_init") (param i32 i32) (result i64)
    (if (call $contains (local.get 0) (local.get 1) (i32.const 100) (i32.const 6))
      (then (return (i64.const 0))))
    ;; refused: the sign bit, then 22 message bytes at 200
    (i64.or (i64.const 0x000000c800000016) (i64.const 0x8000000000000000)))
  (func (export "db_for_read") (param i32 i32) (result i64) i64.const 0))
