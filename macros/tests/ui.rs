//! The derive's error messages and where they point (trybuild compares the `.stderr` files).
//! Re-bless with `TRYBUILD=overwrite cargo test -p svcgen-macros --test ui`.

#[test]
fn derive_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
