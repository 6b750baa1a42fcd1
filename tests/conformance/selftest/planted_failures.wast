;; The harness's self-test. The first assertions are correct and must pass; each one after
;; "Planted failures" is wrong in a different way and must be reported as a failure.
;; CTest runs this script with --expect-failures 9 (tests/conformance/CMakeLists.txt).

;; A trap in a function called through an import unwinds through the importer.
(module $exporter
  (func (export "trap") (unreachable))
  (func (export "twice") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
)
(register "exporter" $exporter)
(module $importer
  (import "exporter" "trap" (func $trap))
  (import "exporter" "twice" (func $twice (param i32) (result i32)))
  (func (export "call-trap") (call $trap))
  (func (export "call-twice") (param i32) (result i32) (call $twice (local.get 0)))
)
(assert_trap (invoke $importer "call-trap") "unreachable")
(assert_return (invoke $importer "call-twice" (i32.const 21)) (i32.const 42))

(module $main
  (import "spectest" "print_i32" (func $print (param i32)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "one-and-a-half") (result f32) (f32.const 1.5))
  (func (export "nan") (result f32) (f32.const nan))
  (func (export "trap") (unreachable))
  (func (export "print") (param i32) (call $print (local.get 0)))
  (global (export "seven") i32 (i32.const 7))
)

;; Correct assertions (they act on $main, the latest module).
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "nan") (f32.const nan:canonical))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_return (get "seven") (i32.const 7))
(assert_return (invoke "print" (i32.const 5)))
(assert_invalid (module (func (result i32))) "type mismatch")
(assert_unlinkable (module (import "spectest" "nothing" (func))) "unknown import")

;; Planted failures.
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4))
(assert_return (invoke "one-and-a-half") (f32.const nan:arithmetic))
(assert_trap (invoke "add" (i32.const 1) (i32.const 2)) "unreachable")
(assert_return (invoke "trap"))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer overflow")
(assert_return (get "seven") (i32.const 8))
(assert_invalid (module (func)) "type mismatch")
(assert_unlinkable (module (import "spectest" "print_i32" (func (param i32)))) "unknown import")
(assert_exhaustion (invoke "add" (i32.const 1) (i32.const 2)) "call stack exhausted")
