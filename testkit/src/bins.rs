//! Locating workspace binaries from a test of another crate.
//!
//! `env!("CARGO_BIN_EXE_<name>")` only exists for binaries of the crate under
//! test, so end-to-end tests find the others next to their own executable:
//! a test runs from `target/<profile>/deps/`, binaries live in `target/<profile>/`.

use std::path::{Path, PathBuf};

/// The path of workspace binary `name` (e.g. `"ingest-ctl"`).
///
/// `CARGO_BIN_EXE_<name>` in the environment wins when set. Panics with the
/// command to run when the binary has not been built: a missing binary is a
/// set-up problem of the test run, not something a test can recover from.
pub fn cargo_bin(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current test executable path");
    let profile_dir = profile_dir_of(&exe);
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` is not built at {}; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// `target/<profile>` for an executable in `target/<profile>/deps` or in
/// `target/<profile>` itself.
fn profile_dir_of(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_skips_deps() {
        assert_eq!(
            profile_dir_of(Path::new("/w/target/debug/deps/e2e-1234")),
            PathBuf::from("/w/target/debug")
        );
        assert_eq!(
            profile_dir_of(Path::new("/w/target/debug/tool")),
            PathBuf::from("/w/target/debug")
        );
    }

    #[test]
    fn missing_binary_panics_with_the_fix() {
        let r = std::panic::catch_unwind(|| cargo_bin("testkit-no-such-binary"));
        let payload = r.expect_err("a missing binary must panic");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            msg.contains("`testkit-no-such-binary` is not built"),
            "{msg}"
        );
        assert!(msg.contains("cargo build --workspace --bins"), "{msg}");
    }
}
