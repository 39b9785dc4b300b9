//! make-dar: writes a test DAR of a given name, version and size, for scripts
//! and benchmarks.
//!
//! `cargo run -p daml-dar --example make-dar -- --name my-token --package-version 1.0.0 --size 8MiB --out my-token.dar`
//!
//! Prints one JSON object (path, mainPackageId, name, version, size, sha256).
//! The same flags always give the same bytes, so reruns are idempotent.

use canton_dr_cli::{Error, ExitCode, OutputFormat, Printer};
use clap::{Parser, ValueEnum};
use daml_dar::{Compression, Corruption, DarBuilder, PaddingPlacement, sha256_hex};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "make-dar",
    about = "Write a valid (or deliberately broken) test DAR"
)]
struct Args {
    /// Package name.
    #[arg(long, env = "MAKE_DAR_NAME")]
    name: String,
    /// Package version (dot-separated numbers).
    #[arg(long = "package-version", env = "MAKE_DAR_VERSION")]
    package_version: String,
    /// Minimum file size: bytes, or with a KiB/MiB/GiB (K/M/G) suffix.
    #[arg(long, env = "MAKE_DAR_SIZE", default_value = "0", value_parser = parse_size)]
    size: u64,
    /// Number of dependency dalfs.
    #[arg(long, env = "MAKE_DAR_DEPENDENCIES", default_value_t = 0)]
    dependencies: usize,
    /// Put the size padding into the main dalf instead of the dependencies.
    #[arg(long, env = "MAKE_DAR_PAD_MAIN")]
    pad_main: bool,
    /// Seed for the package content: same seed, same package ids.
    #[arg(long, env = "MAKE_DAR_SEED", default_value_t = 0)]
    seed: u64,
    /// Sdk-Version written in the manifest.
    #[arg(long, env = "MAKE_DAR_SDK_VERSION", default_value = "3.3.0")]
    sdk_version: String,
    /// Store entries uncompressed (faster for large DARs).
    #[arg(long, env = "MAKE_DAR_STORE")]
    store: bool,
    /// Break the DAR in one of the ways Canton refuses.
    #[arg(long, env = "MAKE_DAR_CORRUPT", value_enum)]
    corrupt: Option<CorruptionArg>,
    /// Output file.
    #[arg(long, short, env = "MAKE_DAR_OUT")]
    out: PathBuf,
    /// Output format (default: JSON unless stdout is a terminal).
    #[arg(long, env = "MAKE_DAR_OUTPUT", value_enum)]
    output: Option<OutputFormat>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CorruptionArg {
    WrongFormat,
    MissingManifest,
    MissingMainDalf,
    MissingDependencyDalf,
    HashMismatch,
    GarbageDalf,
    DamlLf1,
    Truncated,
    NotAZip,
    ZipBombDeclared,
    ZipBomb,
}

impl From<CorruptionArg> for Corruption {
    fn from(c: CorruptionArg) -> Self {
        match c {
            CorruptionArg::WrongFormat => Corruption::WrongFormat("daml-lf-legacy".into()),
            CorruptionArg::MissingManifest => Corruption::MissingManifest,
            CorruptionArg::MissingMainDalf => Corruption::MissingMainDalf,
            CorruptionArg::MissingDependencyDalf => Corruption::MissingDependencyDalf,
            CorruptionArg::HashMismatch => Corruption::HashMismatch,
            CorruptionArg::GarbageDalf => Corruption::GarbageMainDalf,
            CorruptionArg::DamlLf1 => Corruption::DamlLf1,
            CorruptionArg::Truncated => Corruption::Truncated,
            CorruptionArg::NotAZip => Corruption::NotAZip,
            CorruptionArg::ZipBombDeclared => Corruption::ZipBombDeclared,
            CorruptionArg::ZipBomb => Corruption::ZipBomb {
                inflated_size: daml_dar::builder::CANTON_ZIP_BOMB_SIZE,
            },
        }
    }
}

/// `123`, `64K`/`64KiB`, `8M`/`8MiB`, `1G`/`1GiB` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 8MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?}: use K, M or G (binary)"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn run(args: Args, printer: Printer) -> canton_dr_cli::Result<ExitCode> {
    let mut builder = DarBuilder::new(&args.name, &args.package_version)
        .dependencies(args.dependencies)
        .target_size(args.size)
        .seed(args.seed)
        .sdk_version(&args.sdk_version);
    if args.pad_main {
        builder = builder.padding_placement(PaddingPlacement::Main);
    }
    if args.store {
        builder = builder.compression(Compression::Store);
    }
    if let Some(c) = args.corrupt {
        builder = builder.corrupt(c.into());
    }
    let built = builder.build();
    built.write_to(&args.out).map_err(|e| {
        Error::usage(format!("cannot write {}: {e}", args.out.display()))
            .with_hint("check that the directory exists and is writable")
    })?;
    let summary = serde_json::json!({
        "path": args.out.display().to_string(),
        "mainPackageId": built.main_package_id,
        "name": built.name,
        "version": built.version,
        "size": built.bytes.len(),
        "sha256": sha256_hex(&built.bytes),
    });
    printer.result(&summary, |s| {
        format!(
            "wrote {} ({} bytes), main package id {}",
            s["path"].as_str().unwrap_or_default(),
            s["size"],
            s["mainPackageId"].as_str().unwrap_or_default()
        )
    })?;
    Ok(ExitCode::Ok)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let format = OutputFormat::resolve(args.output);
    canton_dr_cli::run_main(format, || run(args, Printer::new(format)))
}
