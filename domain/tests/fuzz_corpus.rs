//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and `fuzz/seeds/<target>/`)
//! through the same property checks the cargo-fuzz targets run, so the corpus-derived cases
//! run on stable in every `cargo test`. The checks live in `fuzz/src/lib.rs`, compiled here
//! as a module; see docs/fuzzing.md.

#[path = "../../fuzz/src/lib.rs"]
mod properties;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Runs `check` on every file of the target's corpus and seed directories; fails naming
/// every input that broke a property (each panic message is printed as it happens).
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = 0;
    let mut failures = Vec::new();
    for dir in ["corpus", "seeds"].map(|d| fuzz.join(d).join(target)) {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path())
            .filter(|path| path.is_file())
            .collect();
        assert!(!paths.is_empty(), "{} has no inputs", dir.display());
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            inputs += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "{} of {inputs} {target} inputs broke a property: {failures:#?}", failures.len());
}

#[test]
fn the_key_parser_corpus_keeps_its_properties() {
    replay("key_parser", properties::check_key_parser);
}

#[test]
fn the_domain_list_parser_corpus_keeps_its_properties() {
    replay("domain_list_parser", properties::check_domain_list);
}

#[test]
fn the_origin_matcher_corpus_keeps_its_properties() {
    replay("origin_matcher", properties::check_origin_matcher);
}
