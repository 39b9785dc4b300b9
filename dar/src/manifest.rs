//! `META-INF/MANIFEST.MF` in JAR manifest syntax: `Name: value` lines in the
//! main section, physical lines of at most 72 bytes, longer values continued on
//! lines that start with one space. Reading follows `java.util.jar.Manifest`
//! (which Canton uses); writing follows damlc.

use crate::error::DarError;

/// The zip entry name of the manifest.
pub const MANIFEST_PATH: &str = "META-INF/MANIFEST.MF";

/// The only `Format` Canton accepts.
pub const DAML_LF_FORMAT: &str = "daml-lf";

/// Maximum physical line length in bytes, excluding the line break.
pub const MAX_LINE_BYTES: usize = 72;

/// The main-section attributes of a manifest, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// (name, value) pairs; values are unwrapped but not trimmed.
    pub attributes: Vec<(String, String)>,
}

/// The dalf paths a manifest names: the main one and its dependencies
/// (`Dalfs` minus `Main-Dalf`, in manifest order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DalfNames {
    /// `Main-Dalf`.
    pub main: String,
    /// `Dalfs` without the main one.
    pub dependencies: Vec<String>,
}

impl Manifest {
    /// Parses the main section of a manifest. Line breaks may be CRLF, LF or
    /// CR; the main section ends at the first empty line.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, DarError> {
        let invalid = |reason: String| DarError::InvalidManifest { reason };
        // Unwrap continuation lines on bytes first: a multi-byte UTF-8
        // character may be split across physical lines.
        let mut logical: Vec<Vec<u8>> = Vec::new();
        for (number, line) in split_lines(bytes).enumerate() {
            if line.is_empty() {
                break;
            }
            if let Some(rest) = line.strip_prefix(b" ") {
                match logical.last_mut() {
                    Some(last) => last.extend_from_slice(rest),
                    None => {
                        return Err(invalid(format!(
                            "line {} continues a header but none precedes it",
                            number + 1
                        )));
                    }
                }
            } else {
                logical.push(line.to_vec());
            }
        }
        let mut attributes = Vec::with_capacity(logical.len());
        for line in logical {
            let text = String::from_utf8(line)
                .map_err(|_| invalid("a header is not valid UTF-8".to_string()))?;
            let Some((name, value)) = text.split_once(": ") else {
                return Err(invalid(format!(
                    "invalid header field {text:?} (expected 'Name: value')"
                )));
            };
            if !is_valid_name(name) {
                return Err(invalid(format!("invalid header name {name:?}")));
            }
            attributes.push((name.to_string(), value.to_string()));
        }
        Ok(Manifest { attributes })
    }

    /// The value of attribute `name` (case-insensitive, the last one wins as in
    /// `java.util.jar.Attributes`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds an attribute at the end.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.attributes.push((name.into(), value.into()));
    }

    /// The dalf paths, checked the way Canton's `DarManifestReader` does:
    /// `Main-Dalf`, `Dalfs` and `Format` are required (in that order), values
    /// are trimmed, `Format` must be `daml-lf`, and `Dalfs` is split at commas.
    pub fn dalf_names(&self) -> Result<DalfNames, DarError> {
        let required = |attribute: &'static str| {
            self.get(attribute)
                .map(str::trim)
                .ok_or(DarError::MissingAttribute { attribute })
        };
        let main = required("Main-Dalf")?;
        let all = required("Dalfs")?;
        let format = required("Format")?;
        if format != DAML_LF_FORMAT {
            return Err(DarError::BadFormat {
                format: format.to_string(),
            });
        }
        let dependencies = all
            .split(',')
            .map(str::trim)
            .filter(|d| *d != main)
            .map(str::to_string)
            .collect();
        Ok(DalfNames {
            main: main.to_string(),
            dependencies,
        })
    }

    /// The manifest as damlc writes it: one attribute per line, LF line
    /// breaks, lines wrapped at [`MAX_LINE_BYTES`] with one-space continuations.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.attributes {
            write_wrapped(&mut out, format!("{name}: {value}").as_bytes());
        }
        out.push(b'\n');
        out
    }
}

/// Writes one logical header line, wrapped at [`MAX_LINE_BYTES`] bytes.
fn write_wrapped(out: &mut Vec<u8>, line: &[u8]) {
    let (first, mut rest) = line.split_at(line.len().min(MAX_LINE_BYTES));
    out.extend_from_slice(first);
    out.push(b'\n');
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_LINE_BYTES - 1));
        out.push(b' ');
        out.extend_from_slice(chunk);
        out.push(b'\n');
        rest = tail;
    }
}

/// Splits on CRLF, LF or CR; a final line without a break is still a line.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
                Some(line)
            }
        }
    })
}

/// JAR header names: 1 to 70 characters of `[A-Za-z0-9_-]`.
fn is_valid_name(name: &str) -> bool {
    (1..=70).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits `<name>-<version>` at the last `-` whose suffix is a Daml package
/// version (dot-separated decimal numbers), as in damlc's `Name:` attribute
/// and dalf directory names.
pub fn split_name_version(s: &str) -> Option<(&str, &str)> {
    s.match_indices('-').rev().find_map(|(i, _)| {
        let (name, version) = (&s[..i], &s[i + 1..]);
        (!name.is_empty() && is_package_version(version)).then_some((name, version))
    })
}

/// True for Daml package versions: `\d+(\.\d+)*`.
pub fn is_package_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_continuations_with_any_line_break() {
        let text = b"Manifest-Version: 1.0\r\nMain-Dalf: pkg/ma\r\n in.dalf\rDalfs: a,\n b\n\nName: per-entry\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.get("Main-Dalf"), Some("pkg/main.dalf"));
        assert_eq!(m.get("dalfs"), Some("a,b"));
        // The per-entry section after the blank line is not part of the main section.
        assert_eq!(m.get("Name"), None);
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            &b" starts with a continuation\n"[..],
            b"NoColon\n",
            b"Bad Name: x\n",
        ] {
            let err = Manifest::parse(bad).unwrap_err();
            assert_eq!(err.canton_error_id(), "INVALID_DAR", "{bad:?}");
        }
    }

    #[test]
    fn writes_lines_of_at_most_72_bytes_and_reads_them_back() {
        let long = (0..20)
            .map(|i| format!("dir/dep-{i}.dalf"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut m = Manifest::default();
        m.push("Dalfs", long.clone());
        m.push("Format", "daml-lf");
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.lines().count() > 3);
        for line in text.lines() {
            assert!(line.len() <= 72, "{line:?}");
        }
        assert!(text.lines().nth(1).unwrap().starts_with(' '));
        assert_eq!(
            Manifest::parse(&bytes).unwrap().get("Dalfs"),
            Some(long.as_str())
        );
    }

    #[test]
    fn dalf_names_follow_canton() {
        let m = Manifest::parse(
            b"Main-Dalf: m.dalf \nDalfs: m.dalf, d1.dalf,d2.dalf\nFormat: daml-lf\n",
        )
        .unwrap();
        let names = m.dalf_names().unwrap();
        assert_eq!(names.main, "m.dalf");
        assert_eq!(names.dependencies, ["d1.dalf", "d2.dalf"]);

        let m = Manifest::parse(b"Dalfs: m.dalf\nFormat: daml-lf\n").unwrap();
        assert_eq!(
            m.dalf_names().unwrap_err(),
            DarError::MissingAttribute {
                attribute: "Main-Dalf"
            }
        );
        let m = Manifest::parse(b"Main-Dalf: m\nDalfs: m\nFormat: lf\n").unwrap();
        assert_eq!(
            m.dalf_names().unwrap_err(),
            DarError::BadFormat {
                format: "lf".into()
            }
        );
    }

    #[test]
    fn splits_name_and_version_at_the_last_versioned_dash() {
        assert_eq!(
            split_name_version("splice-amulet-0.1.14"),
            Some(("splice-amulet", "0.1.14"))
        );
        assert_eq!(split_name_version("a-1-2.0"), Some(("a-1", "2.0")));
        assert_eq!(split_name_version("no-version-here"), None);
        assert_eq!(split_name_version("-1.0"), None);
        assert_eq!(split_name_version("x-1..0"), None);
    }
}
