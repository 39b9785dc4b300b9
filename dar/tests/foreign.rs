//! DARs assembled by hand in the test (not by `DarBuilder`): the parser must
//! read what other tools write: CRLF manifests, per-entry sections, wrapped
//! long `Dalfs`, packages without metadata, directories in the zip.

use daml_dar::proto::{Archive, ArchivePayload, PackageHead, archive_payload::Sum};
use daml_dar::{DarError, NameSource, inspect_bytes, sha256_hex};
use prost::Message;
use std::io::Write;
use zip::write::SimpleFileOptions;

/// A dalf whose package has no metadata; returns (dalf bytes, package id).
fn dalf_without_metadata(tag: &str) -> (Vec<u8>, String) {
    let package = PackageHead {
        interned_strings: vec![tag.to_string()],
        metadata: None,
    }
    .encode_to_vec();
    let payload = ArchivePayload {
        minor: "dev".into(),
        patch: 0,
        sum: Some(Sum::DamlLf2(package.into())),
    }
    .encode_to_vec();
    let id = sha256_hex(&payload);
    let archive = Archive {
        hash_function: 0,
        payload: payload.into(),
        hash: id.clone(),
    };
    (archive.encode_to_vec(), id)
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        if name.ends_with('/') {
            zip.add_directory(*name, SimpleFileOptions::default())
                .unwrap();
        } else {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

/// Wraps a header line at 72 bytes with one-space continuations, CRLF.
fn wrap_crlf(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::from_utf8(bytes[..bytes.len().min(72)].to_vec()).unwrap();
    out.push_str("\r\n");
    for chunk in bytes[bytes.len().min(72)..].chunks(71) {
        out.push(' ');
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

#[test]
fn crlf_manifest_with_long_wrapped_dalfs_and_per_entry_sections() {
    let (main, main_id) = dalf_without_metadata("main");
    let deps: Vec<(String, Vec<u8>, String)> = (0..8)
        .map(|i| {
            let (d, id) = dalf_without_metadata(&format!("dep{i}"));
            (
                format!("some-dir/very-long-dependency-name-{i}-{id}.dalf"),
                d,
                id,
            )
        })
        .collect();
    let main_path = format!("token-standard-2.10.3-{main_id}/token-standard-2.10.3-{main_id}.dalf");
    let mut dalfs = vec![main_path.clone()];
    dalfs.extend(deps.iter().map(|(p, _, _)| p.clone()));
    let manifest = [
        "Manifest-Version: 1.0".to_string(),
        "Created-By: someone else".to_string(),
        format!("Main-Dalf: {main_path}"),
        format!("Dalfs: {}", dalfs.join(", ")),
        "Format: daml-lf".to_string(),
    ]
    .iter()
    .map(|l| wrap_crlf(l))
    .collect::<String>()
        + "\r\nName: some-dir/x.dalf\r\nSHA-256-Digest: abc\r\n";
    assert!(
        manifest.lines().any(|l| l.starts_with(' ')),
        "the Dalfs line is wrapped"
    );

    let mut entries: Vec<(&str, &[u8])> = vec![
        ("META-INF/", b""),
        ("META-INF/MANIFEST.MF", manifest.as_bytes()),
        ("some-dir/", b""),
        (&main_path, &main),
    ];
    for (p, d, _) in &deps {
        entries.push((p, d));
    }
    let info = inspect_bytes(&zip_of(&entries)).unwrap();
    assert_eq!(info.dar.main_package_id, main_id);
    assert_eq!(info.dar.dependency_paths, dalfs[1..]);
    assert_eq!(
        info.dar
            .dalfs
            .iter()
            .map(|d| d.package_id.clone())
            .collect::<Vec<_>>()[1..],
        deps.iter().map(|(_, _, id)| id.clone()).collect::<Vec<_>>()[..]
    );
    assert_eq!(info.dar.main_dalf().language_version, "2.dev");
    // No package metadata and no Name attribute: from the dalf directory.
    assert_eq!(info.dar.name_source, NameSource::DalfPath);
    assert_eq!(
        (info.dar.name.as_str(), info.dar.version.as_str()),
        ("token-standard", "2.10.3")
    );
}

#[test]
fn name_from_the_manifest_when_the_package_has_no_metadata() {
    let (main, _) = dalf_without_metadata("m");
    let manifest =
        "Name: splice-amulet-0.1.14\nMain-Dalf: m.dalf\nDalfs: m.dalf\nFormat: daml-lf\n";
    let info = inspect_bytes(&zip_of(&[
        ("META-INF/MANIFEST.MF", manifest.as_bytes()),
        ("m.dalf", &main),
    ]))
    .unwrap();
    assert_eq!(info.dar.name_source, NameSource::Manifest);
    assert_eq!(
        (info.dar.name.as_str(), info.dar.version.as_str()),
        ("splice-amulet", "0.1.14")
    );
    assert!(info.dar.dependency_paths.is_empty());
}

#[test]
fn dalfs_without_the_main_and_unknown_names() {
    // Canton does not require Dalfs to list the main dalf.
    let (main, id) = dalf_without_metadata("m");
    let manifest = "Main-Dalf: m.dalf\nDalfs: \nFormat: daml-lf\n";
    let bytes = zip_of(&[
        ("META-INF/MANIFEST.MF", manifest.as_bytes()),
        ("m.dalf", &main),
    ]);
    // An empty Dalfs names the dalf "" which is missing, as in Canton.
    assert_eq!(
        inspect_bytes(&bytes).unwrap_err(),
        DarError::MissingDalf {
            path: String::new()
        }
    );
    let manifest = "Main-Dalf: m.dalf\nDalfs: m.dalf\nFormat: daml-lf\n";
    let bytes = zip_of(&[
        ("META-INF/MANIFEST.MF", manifest.as_bytes()),
        ("m.dalf", &main),
    ]);
    let info = inspect_bytes(&bytes).unwrap();
    assert_eq!(info.dar.main_package_id, id);
    assert_eq!(info.dar.name_source, NameSource::Unknown);
    assert_eq!(info.dar.name, "m.dalf");
}

#[test]
fn unsupported_hash_function_and_empty_payload() {
    let payload = ArchivePayload {
        minor: "1".into(),
        patch: 0,
        sum: None,
    }
    .encode_to_vec();
    let id = sha256_hex(&payload);
    let manifest = "Main-Dalf: m.dalf\nDalfs: m.dalf\nFormat: daml-lf\n";
    let with = |hash_function: i32| {
        let dalf = Archive {
            hash_function,
            payload: payload.clone().into(),
            hash: id.clone(),
        }
        .encode_to_vec();
        inspect_bytes(&zip_of(&[
            ("META-INF/MANIFEST.MF", manifest.as_bytes()),
            ("m.dalf", &dalf),
        ]))
        .unwrap_err()
    };
    assert!(matches!(
        with(7),
        DarError::UnsupportedHashFunction { value: 7, .. }
    ));
    let err = with(0);
    assert!(
        matches!(err, DarError::UnsupportedLanguageVersion { .. }),
        "{err:?}"
    );
    assert_eq!(err.canton_error_id(), "DAR_PARSE_ERROR");
}
