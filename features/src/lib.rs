//! Behaviour specs live in `tests/` and `*.feature` files; this crate has no library code.
