//! Builds DARs with `DarBuilder` and reads them back with the parser: ids,
//! names, versions, sizes, and the manifest as written.

use daml_dar::{
    Compression, DarBuilder, NameSource, PaddingPlacement, ReadOptions, Scope, inspect_bytes,
    inspect_bytes_with, inspect_file, is_package_id, sha256_hex,
};

#[test]
fn parse_finds_the_builders_main_package_id() {
    let built = DarBuilder::new("my-token", "1.2.3").dependencies(2).build();
    let info = inspect_bytes(&built.bytes).unwrap();
    assert!(is_package_id(&built.main_package_id));
    assert_eq!(info.dar.main_package_id, built.main_package_id);
    assert_eq!(info.dar.name, "my-token");
    assert_eq!(info.dar.version, "1.2.3");
    assert_eq!(info.dar.name_source, NameSource::PackageMetadata);
    assert_eq!(info.dar.dalfs.len(), 3);
    for (read, written) in info.dar.dalfs.iter().zip(&built.dalfs) {
        assert_eq!(read.path, written.path);
        assert_eq!(read.package_id, written.package_id);
        assert_eq!(read.language_version, "2.1");
    }
    assert_eq!(info.dar.dependency_paths.len(), 2);
    assert_eq!(info.dar.sdk_version(), Some("3.3.0"));
    assert_eq!(info.file_size, built.bytes.len() as u64);
    assert_eq!(info.file_sha256, sha256_hex(&built.bytes));
}

#[test]
fn same_inputs_same_id_different_inputs_different_ids() {
    let a = DarBuilder::new("pkg", "1.0.0").build();
    let b = DarBuilder::new("pkg", "1.0.0").build();
    assert_eq!(a.main_package_id, b.main_package_id);
    assert_eq!(a.bytes, b.bytes, "builds are byte-for-byte reproducible");
    let ids = [
        a.main_package_id.clone(),
        DarBuilder::new("pkg", "1.0.1").build().main_package_id,
        DarBuilder::new("pkh", "1.0.0").build().main_package_id,
        DarBuilder::new("pkg", "1.0.0")
            .seed(1)
            .build()
            .main_package_id,
    ];
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn target_size_is_reached_and_the_padding_is_real() {
    const MIB: u64 = 1024 * 1024;
    for (deps, placement) in [
        (0, PaddingPlacement::Auto),
        (3, PaddingPlacement::Auto),
        (2, PaddingPlacement::Main),
    ] {
        let built = DarBuilder::new("big", "0.1.0")
            .dependencies(deps)
            .padding_placement(placement)
            .target_size(2 * MIB)
            .build();
        let len = built.bytes.len() as u64;
        assert!(len >= 2 * MIB, "{len}");
        assert!(len < 2 * MIB + 4096, "overshoot {len}");
        let info = inspect_bytes(&built.bytes).unwrap();
        let payloads: u64 = info.dar.dalfs.iter().map(|d| d.payload_size).sum();
        // Deflate could not shrink the padding: the dalfs hold the bytes.
        assert!(payloads > 2 * MIB - 8192, "{payloads}");
        let main = info.dar.main_dalf().payload_size;
        if deps > 0 && placement == PaddingPlacement::Auto {
            assert!(
                main < 4096,
                "padding went to the dependencies, main is {main}"
            );
        } else {
            assert!(
                main > 2 * MIB - 8192,
                "padding went to the main dalf, main is {main}"
            );
        }
    }
}

#[test]
fn an_8_mib_dar_is_at_least_8_mib() {
    let built = DarBuilder::new("eight", "1.0.0")
        .target_size(8 * 1024 * 1024)
        .build();
    assert!(built.bytes.len() >= 8 * 1024 * 1024);
    let info = inspect_bytes(&built.bytes).unwrap();
    assert_eq!(info.dar.main_package_id, built.main_package_id);
}

#[test]
fn stored_and_deflated_give_the_same_ids() {
    let a = DarBuilder::new("c", "1.0.0").dependencies(1).build();
    let b = DarBuilder::new("c", "1.0.0")
        .dependencies(1)
        .compression(Compression::Store)
        .build();
    assert_ne!(a.bytes, b.bytes);
    assert_eq!(
        inspect_bytes(&a.bytes).unwrap().dar,
        inspect_bytes(&b.bytes).unwrap().dar
    );
}

#[test]
fn main_only_scope_finds_the_same_identity() {
    let built = DarBuilder::new("scoped", "2.0.0").dependencies(3).build();
    let options = ReadOptions {
        scope: Scope::MainOnly,
        ..ReadOptions::default()
    };
    let quick = inspect_bytes_with(&built.bytes, &options).unwrap();
    let full = inspect_bytes(&built.bytes).unwrap();
    assert_eq!(quick.dar.main_package_id, full.dar.main_package_id);
    assert_eq!(quick.dar.dalfs.len(), 1);
    assert_eq!(quick.dar.dependency_paths, full.dar.dependency_paths);
    assert_eq!(quick.file_sha256, full.file_sha256);
}

#[test]
fn inspect_file_hashes_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.dar");
    // Over the 1 MiB read chunk, so the hash spans several reads.
    let built = DarBuilder::new("file", "3.1.4")
        .target_size(3 * 1024 * 1024 + 17)
        .build();
    built.write_to(&path).unwrap();
    let info = inspect_file(&path).unwrap();
    assert_eq!(info.file_sha256, sha256_hex(&std::fs::read(&path).unwrap()));
    assert_eq!(info.file_size, built.bytes.len() as u64);
    assert_eq!(info.dar.main_package_id, built.main_package_id);

    let missing = inspect_file(dir.path().join("nope.dar")).unwrap_err();
    assert_eq!(missing.canton_error_id(), None);
    assert!(missing.to_string().contains("nope.dar"), "{missing}");
}

#[test]
fn property_round_trip_over_seeds() {
    for seed in 0..12u64 {
        let deps = (seed % 4) as usize;
        let version = format!("{}.{}.{}", seed % 3, seed % 5, seed);
        let name = format!("prop-pkg-{seed}");
        let compression = if seed % 2 == 0 {
            Compression::Deflate
        } else {
            Compression::Store
        };
        let built = DarBuilder::new(&name, &version)
            .seed(seed)
            .dependencies(deps)
            .compression(compression)
            .target_size(seed * 10_000)
            .build();
        let info = inspect_bytes(&built.bytes).unwrap();
        assert_eq!(
            info.dar.main_package_id, built.main_package_id,
            "seed {seed}"
        );
        assert_eq!(info.dar.main_package_id, info.dar.dalfs[0].package_id);
        assert_eq!(
            (info.dar.name.as_str(), info.dar.version.as_str()),
            (name.as_str(), version.as_str())
        );
        assert_eq!(info.dar.dalfs.len(), deps + 1);
        assert!(built.bytes.len() as u64 >= seed * 10_000);
        // The main dalf's path carries the package id, as damlc writes it.
        assert!(info.dar.main_dalf_path.contains(&built.main_package_id));
    }
}

#[test]
fn a_long_dalfs_line_is_wrapped_and_read_back() {
    let built = DarBuilder::new("many-deps", "1.0.0")
        .dependencies(10)
        .build();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&built.bytes)).unwrap();
    let mut manifest = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("META-INF/MANIFEST.MF").unwrap(),
        &mut manifest,
    )
    .unwrap();
    let continuations = manifest.lines().filter(|l| l.starts_with(' ')).count();
    // 11 paths of ~150 bytes each: the Dalfs value spans well over 20 lines.
    assert!(continuations > 20, "{manifest}");
    assert!(manifest.lines().all(|l| l.len() <= 72));
    let info = inspect_bytes(&built.bytes).unwrap();
    let written: Vec<&str> = built.dalfs[1..].iter().map(|d| d.path.as_str()).collect();
    assert_eq!(info.dar.dependency_paths, written);
    assert_eq!(info.dar.dalfs.len(), 11);
}
