//! Every deliberate defect of `DarBuilder` is refused with its own error and
//! the Canton error id a participant would answer with.

use daml_dar::builder::{ZIP_BOMB_DECLARED_SIZE, ZIP_BOMB_ENTRY};
use daml_dar::{
    Compression, Corruption, DarBuilder, DarError, Limits, ReadOptions, Scope, inspect_bytes,
    inspect_bytes_with,
};

fn refuse(c: Corruption) -> DarError {
    let built = DarBuilder::new("broken", "1.0.0")
        .dependencies(1)
        .corrupt(c.clone())
        .build();
    let err = inspect_bytes(&built.bytes).expect_err(&format!("{c:?} was accepted"));
    // The quick inventory scope refuses the same way.
    let quick = ReadOptions {
        scope: Scope::MainOnly,
        ..ReadOptions::default()
    };
    assert_eq!(
        inspect_bytes_with(&built.bytes, &quick).unwrap_err(),
        err,
        "{c:?}"
    );
    err
}

#[test]
fn wrong_format() {
    let err = refuse(Corruption::WrongFormat("daml-lf-legacy".into()));
    assert_eq!(
        err,
        DarError::BadFormat {
            format: "daml-lf-legacy".into()
        }
    );
    assert_eq!(err.canton_error_id(), "INVALID_DAR");
    assert!(
        err.reason().contains("\"daml-lf-legacy\", not \"daml-lf\""),
        "{err}"
    );
}

#[test]
fn missing_manifest() {
    let err = refuse(Corruption::MissingManifest);
    assert_eq!(err, DarError::MissingManifest);
    assert_eq!(err.canton_error_id(), "INVALID_DAR");
}

#[test]
fn missing_attributes() {
    for attribute in ["Main-Dalf", "Dalfs", "Format"] {
        let err = refuse(Corruption::MissingAttribute(attribute));
        assert_eq!(err, DarError::MissingAttribute { attribute });
        assert_eq!(err.canton_error_id(), "INVALID_DAR");
    }
    // Optional attributes may go.
    let built = DarBuilder::new("x", "1.0.0")
        .corrupt(Corruption::MissingAttribute("Sdk-Version"))
        .build();
    assert_eq!(inspect_bytes(&built.bytes).unwrap().dar.sdk_version(), None);
}

#[test]
fn missing_dalfs() {
    let built = DarBuilder::new("broken", "1.0.0").dependencies(1).build();
    let err = refuse(Corruption::MissingMainDalf);
    assert_eq!(
        err,
        DarError::MissingDalf {
            path: built.dalfs[0].path.clone()
        }
    );
    assert_eq!(err.canton_error_id(), "INVALID_ZIP_ENTRY");
    let err = refuse(Corruption::MissingDependencyDalf);
    assert_eq!(
        err,
        DarError::MissingDalf {
            path: built.dalfs[1].path.clone()
        }
    );
}

#[test]
fn hash_mismatch() {
    let built = DarBuilder::new("broken", "1.0.0")
        .corrupt(Corruption::HashMismatch)
        .build();
    match refuse(Corruption::HashMismatch) {
        err @ DarError::HashMismatch { .. } => {
            assert_eq!(err.canton_error_id(), "DAR_PARSE_ERROR");
            let DarError::HashMismatch {
                computed, declared, ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!(computed, &built.main_package_id);
            assert_ne!(declared, computed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_dalf_and_lf1() {
    let err = refuse(Corruption::GarbageMainDalf);
    assert!(matches!(err, DarError::DalfDecode { .. }), "{err:?}");
    assert_eq!(err.canton_error_id(), "DAR_PARSE_ERROR");
    let err = refuse(Corruption::DamlLf1);
    assert!(
        matches!(err, DarError::UnsupportedLanguageVersion { .. }),
        "{err:?}"
    );
    assert_eq!(err.canton_error_id(), "DAR_PARSE_ERROR");
}

#[test]
fn truncated_and_not_a_zip() {
    for c in [Corruption::Truncated, Corruption::NotAZip] {
        let err = refuse(c);
        assert!(matches!(err, DarError::NotAZip { .. }), "{err:?}");
        assert_eq!(err.canton_error_id(), "INVALID_DAR");
    }
    assert!(matches!(
        inspect_bytes(&[]).unwrap_err(),
        DarError::NotAZip { .. }
    ));
}

#[test]
fn zip_bomb_by_declared_size() {
    let built = DarBuilder::new("bomb", "1.0.0")
        .corrupt(Corruption::ZipBombDeclared)
        .build();
    assert!(
        built.bytes.len() < 64 * 1024,
        "the bomb is cheap: {}",
        built.bytes.len()
    );
    let err = refuse(Corruption::ZipBombDeclared);
    assert_eq!(
        err,
        DarError::ZipBomb {
            entry: ZIP_BOMB_ENTRY.into(),
            size: ZIP_BOMB_DECLARED_SIZE,
            limit: 1024 * 1024 * 1024,
        }
    );
    assert_eq!(err.canton_error_id(), "ZIP_BOMB");
}

#[test]
fn zip_bomb_by_real_size_under_a_small_cap() {
    let built = DarBuilder::new("big", "1.0.0")
        .target_size(300_000)
        .compression(Compression::Store)
        .build();
    let small = |max_entry_size| ReadOptions {
        limits: Limits { max_entry_size },
        ..ReadOptions::default()
    };
    let err = inspect_bytes_with(&built.bytes, &small(100_000)).unwrap_err();
    assert!(
        matches!(&err, DarError::ZipBomb { entry, limit: 100_000, .. } if *entry == built.dalfs[0].path),
        "{err:?}"
    );
    assert!(inspect_bytes_with(&built.bytes, &small(1_000_000)).is_ok());

    // Canton refuses an entry once it reaches the threshold: exactly the
    // largest entry's size is refused, one byte more is accepted.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&built.bytes)).unwrap();
    let largest = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().size())
        .max()
        .unwrap();
    assert!(matches!(
        inspect_bytes_with(&built.bytes, &small(largest)).unwrap_err(),
        DarError::ZipBomb { .. }
    ));
    assert!(inspect_bytes_with(&built.bytes, &small(largest + 1)).is_ok());
}

#[test]
fn corrupted_entry_data_is_a_parse_error() {
    // Flip a byte inside the stored main dalf: the CRC check fails.
    let built = DarBuilder::new("crc", "1.0.0")
        .target_size(20_000)
        .compression(Compression::Store)
        .build();
    let mut bytes = built.bytes.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    // Canton's ZipInputStream throws an IOException: DAR_PARSE_ERROR.
    let err = inspect_bytes(&bytes).unwrap_err();
    assert!(matches!(err, DarError::EntryRead { .. }), "{err:?}");
    assert_eq!(err.canton_error_id(), "DAR_PARSE_ERROR");
}

#[test]
fn real_zip_bomb_is_cheap_and_refused_by_declared_size() {
    let built = DarBuilder::new("bomb", "1.0.0")
        .corrupt(Corruption::ZipBomb {
            inflated_size: daml_dar::builder::CANTON_ZIP_BOMB_SIZE,
        })
        .build();
    assert!(built.bytes.len() < 1_200_000, "{}", built.bytes.len());
    let err = refuse(Corruption::ZipBomb {
        inflated_size: daml_dar::builder::CANTON_ZIP_BOMB_SIZE,
    });
    match &err {
        DarError::ZipBomb { entry, size, limit } => {
            assert_eq!(entry, ZIP_BOMB_ENTRY);
            assert!(*size >= *limit && *limit == 1 << 30, "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.canton_error_id(), "ZIP_BOMB");
}

#[test]
fn small_real_bomb_inflates_to_its_declared_size_with_a_valid_crc() {
    let built = DarBuilder::new("bomb", "1.0.0")
        .corrupt(Corruption::ZipBomb {
            inflated_size: 5 << 20,
        })
        .build();
    // Under the default cap it is an ordinary (odd) entry: the DAR is valid,
    // which proves the hand-made deflate stream and its CRC are right.
    let info = inspect_bytes(&built.bytes).unwrap();
    assert_eq!(info.dar.main_package_id, built.main_package_id);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&built.bytes)).unwrap();
    let mut entry = zip.by_name(ZIP_BOMB_ENTRY).unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let declared = entry.size();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
    assert_eq!(out.len() as u64, declared);
    assert!(declared >= 5 << 20);
    assert!(out.iter().all(|&b| b == 0));
    // Under a small cap it is a bomb.
    let small = ReadOptions {
        limits: Limits {
            max_entry_size: 1 << 20,
        },
        ..ReadOptions::default()
    };
    assert!(matches!(
        inspect_bytes_with(&built.bytes, &small).unwrap_err(),
        DarError::ZipBomb { .. }
    ));
}
