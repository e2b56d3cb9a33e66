;; A router that reads its input: it answers from the model's app, table and
;; tags and the hints, by looking for these bytes in the input JSON:
;;   "app":"analytics"        -> analytics
;;   "tenant":"acme"          -> tenant-acme
;;   "pii" (a tag)            -> refused: pii is not readable here
;;   "table":"cache_entries"  -> cache
;; and has no opinion otherwise. Reads and writes answer alike.
(module
  (memory (export "memory") 1)
  (data (i32.const 100) "\"app\":\"analytics\"")
  (data (i32.const 140) "\"tenant\":\"acme\"")
  (data (i32.const 180) "\"pii\"")
  (data (i32.const 200) "\"table\":\"cache_entries\"")
  (data (i32.const 300) "analytics")
  (data (i32.const 320) "tenant-acme")
  (data (i32.const 340) "pii is not readable here")
  (data (i32.const 380) "cache")
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

  (func $decide (param $ptr i32) (param $len i32) (result i64)
    (if (call $contains (local.get $ptr) (local.get $len) (i32.const 100) (i32.const 17))
      (then (return (i64.const 0x0000012c00000009))))
    (if (call $contains (local.get $ptr) (local.get $len) (i32.const 140) (i32.const 15))
      (then (return (i64.const 0x000001400000000b))))
    (if (call $contains (local.get $ptr) (local.get $len) (i32.const 180) (i32.const 5))
      (then (return (i64.or (i64.const 0x0000015400000018) (i64.const 0x8000000000000000)))))
    (if (call $contains (local.get $ptr) (local.get $len) (i32.const 200) (i32.const 23))
      (then (return (i64.const 0x0000017c00000005))))
    (i64.const 0))
  (func (export "db_for_read") (param i32 i32) (result i64) (call $decide (local.get 0) (local.get 1)))
  (func (export "db_for_write") (param i32 i32) (result i64) (call $decide (local.get 0) (local.get 1))))
