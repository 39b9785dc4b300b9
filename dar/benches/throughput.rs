//! Throughput of DAR hashing and parsing against `openssl dgst -sha256` and
//! `sha256sum` on the same files, alternating in one run.
//!
//! `cargo bench -p daml-dar --bench throughput [-- SIZE_MIB]` (default 256).
//! Shows that sha2 uses the CPU's SHA extensions (it should be close to
//! openssl, several times faster than a software SHA-256) and what a full and
//! a main-only DAR inspection cost relative to hashing the file once.

use daml_dar::{
    Compression, DarBuilder, PaddingPlacement, ReadOptions, Scope, inspect_file_with, sha256_hex,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn best<F: FnMut()>(mut f: F) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("at least one round")
}

fn tool(cmd: &str, args: &[&str], file: &Path) -> Option<Duration> {
    let ok = Command::new(cmd)
        .args(args)
        .arg(file)
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| {
        best(|| {
            let out = Command::new(cmd)
                .args(args)
                .arg(file)
                .output()
                .expect("tool runs");
            assert!(out.status.success());
        })
    })
}

fn rate(bytes: u64, d: Duration) -> String {
    format!(
        "{:7.0} MB/s  ({:8.1} ms)",
        bytes as f64 / d.as_secs_f64() / 1e6,
        d.as_secs_f64() * 1e3
    )
}

fn main() {
    let mib: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let size = mib << 20;
    let shani = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.split_whitespace().any(|w| w == "sha_ni"))
        .unwrap_or(false);
    println!("CPU advertises sha_ni: {shani}");

    let dir = tempfile::tempdir().expect("temp dir");
    // DAR with the bulk in dependency dalfs (as real DARs), stored entries.
    let deps = DarBuilder::new("bench", "1.0.0")
        .dependencies(4)
        .target_size(size)
        .compression(Compression::Store)
        .build();
    let deps_path = dir.path().join("deps.dar");
    deps.write_to(&deps_path).expect("write");
    // DAR with the bulk in the main dalf.
    let main = DarBuilder::new("bench", "1.0.0")
        .padding_placement(PaddingPlacement::Main)
        .target_size(size)
        .compression(Compression::Store)
        .build();
    let main_path = dir.path().join("main.dar");
    main.write_to(&main_path).expect("write");
    let len = deps.bytes.len() as u64;
    println!("files: {} bytes each, best of {ROUNDS}\n", len);

    let full = ReadOptions::default();
    let quick = ReadOptions {
        scope: Scope::MainOnly,
        ..ReadOptions::default()
    };
    let sha2_mem = best(|| {
        std::hint::black_box(sha256_hex(&deps.bytes));
    });
    let openssl = tool("openssl", &["dgst", "-sha256"], &deps_path);
    let sha256sum = tool("sha256sum", &[], &deps_path);
    let read_hash = best(|| {
        std::hint::black_box(daml_dar::hash_file(&deps_path).expect("read"));
    });
    let deps_quick = best(|| {
        inspect_file_with(&deps_path, &quick).expect("valid");
    });
    let deps_full = best(|| {
        inspect_file_with(&deps_path, &full).expect("valid");
    });
    let main_quick = best(|| {
        inspect_file_with(&main_path, &quick).expect("valid");
    });

    println!("sha2 over memory                  {}", rate(len, sha2_mem));
    if let Some(d) = openssl {
        println!("openssl dgst -sha256 (file)       {}", rate(len, d));
    }
    if let Some(d) = sha256sum {
        println!("sha256sum (file)                  {}", rate(len, d));
    }
    println!("hash_file (file)              {}", rate(len, read_hash));
    println!(
        "inspect_file MainOnly, deps DAR   {}",
        rate(len, deps_quick)
    );
    println!("inspect_file Full,     deps DAR   {}", rate(len, deps_full));
    println!(
        "inspect_file MainOnly, main DAR   {}",
        rate(len, main_quick)
    );
    if let Some(o) = openssl {
        let r = |d: Duration| d.as_secs_f64() / o.as_secs_f64();
        println!(
            "\nratios to openssl: sha2 {:.2}, hash_file {:.2}, MainOnly deps DAR {:.2}, Full deps DAR {:.2}, MainOnly main DAR {:.2}",
            r(sha2_mem),
            r(read_hash),
            r(deps_quick),
            r(deps_full),
            r(main_quick)
        );
    }
}
