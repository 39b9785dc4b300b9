//! What the node should hold, and how that compares with what it holds.
//!
//! The wanted set merges DARs found on disk (`--dir`) with entries of the
//! `dar_uploads` registry (`--registry [--since T]`), keyed by main package
//! id (the DAR's identity in Canton 3.x), never by name and version: two
//! builds of `token-1.0.0` with different content are different DARs.

use crate::inventory::{Entry, LocalDar};
use crate::node::NodeDar;
use integration_db::dars::DarUpload;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// A DAR the node should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Main package id.
    pub main_package_id: String,
    /// The DAR file found under `--dir`, if any (the first by path).
    pub file: Option<LocalDar>,
    /// The registry entry, if any.
    pub registry: Option<DarUpload>,
}

impl Wanted {
    /// Name: the local file's, else the registry's.
    pub fn name(&self) -> Option<&str> {
        self.file
            .as_ref()
            .map(|f| f.name.as_str())
            .or_else(|| self.registry.as_ref().and_then(|r| r.name.as_deref()))
    }

    /// Version: the local file's, else the registry's.
    pub fn version(&self) -> Option<&str> {
        self.file
            .as_ref()
            .map(|f| f.version.as_str())
            .or_else(|| self.registry.as_ref().and_then(|r| r.version.as_deref()))
    }

    /// The file to upload from: the one found under `--dir`, else the path
    /// the registry recorded.
    pub fn path(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.path.as_str()).or_else(|| {
            self.registry
                .as_ref()
                .and_then(|r| r.source_path.as_deref())
        })
    }

    /// Where the wish comes from: `dir`, `registry`, or both.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.file.is_some() {
            s.push("dir");
        }
        if self.registry.is_some() {
            s.push("registry");
        }
        s
    }

    fn sort_key(&self) -> (String, String, String) {
        (
            self.name().unwrap_or_default().to_string(),
            self.version().unwrap_or_default().to_string(),
            self.main_package_id.clone(),
        )
    }

    /// The fields every output line about this DAR carries.
    pub fn fields(&self) -> Value {
        let mut v = json!({
            "mainPackageId": self.main_package_id,
            "name": self.name(),
            "version": self.version(),
            "path": self.path(),
            "sources": self.sources(),
        });
        if let Some(f) = &self.file {
            v["sha256"] = json!(f.sha256);
            v["size"] = json!(f.size);
        } else if let Some(r) = &self.registry {
            v["sha256"] = json!(r.file_sha256);
            v["size"] = json!(r.size_bytes);
        }
        if let Some(r) = &self.registry {
            v["uploadedAt"] = json!(canton_dr_cli::time::format_record_time(r.uploaded_at));
        }
        v
    }
}

/// Merges DARs on disk and registry entries into the wanted set, sorted by
/// name, version, main package id.
pub fn wanted(local: &[Entry], registry: Vec<DarUpload>) -> Vec<Wanted> {
    let mut by_id: BTreeMap<String, Wanted> = BTreeMap::new();
    for e in local {
        if let Entry::Dar(d) = e {
            by_id
                .entry(d.main_package_id.clone())
                .or_insert_with(|| Wanted {
                    main_package_id: d.main_package_id.clone(),
                    file: Some(d.clone()),
                    registry: None,
                });
        }
    }
    for r in registry {
        let w = by_id
            .entry(r.main_package_id.clone())
            .or_insert_with(|| Wanted {
                main_package_id: r.main_package_id.clone(),
                file: None,
                registry: None,
            });
        w.registry = Some(r);
    }
    let mut all: Vec<Wanted> = by_id.into_values().collect();
    all.sort_by_key(Wanted::sort_key);
    all
}

/// The comparison of the wanted set with the node's DARs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// Wanted, not on the node.
    pub missing: Vec<Wanted>,
    /// Wanted and on the node.
    pub present: Vec<(Wanted, NodeDar)>,
    /// On the node, not wanted (built-in DARs included, marked as such).
    pub extra: Vec<NodeDar>,
}

/// Compares by main package id.
pub fn diff(wanted: Vec<Wanted>, node: &[NodeDar]) -> Diff {
    let wanted_ids: HashSet<&str> = wanted.iter().map(|w| w.main_package_id.as_str()).collect();
    let mut extra: Vec<NodeDar> = node
        .iter()
        .filter(|n| !wanted_ids.contains(n.main_package_id.as_str()))
        .cloned()
        .collect();
    extra.sort_by(|a, b| {
        (&a.name, &a.version, &a.main_package_id).cmp(&(&b.name, &b.version, &b.main_package_id))
    });
    let on_node: BTreeMap<&str, &NodeDar> = node
        .iter()
        .map(|n| (n.main_package_id.as_str(), n))
        .collect();
    let mut d = Diff {
        extra,
        ..Diff::default()
    };
    for w in wanted {
        match on_node.get(w.main_package_id.as_str()) {
            Some(n) => d.present.push((w, (*n).clone())),
            None => d.missing.push(w),
        }
    }
    d
}

/// The `{"type":"missing",...}` line.
pub fn missing_line(w: &Wanted) -> Value {
    canton_dr_cli::output::event_object("missing", w.fields())
}

/// The `{"type":"present",...}` line.
pub fn present_line(w: &Wanted, n: &NodeDar) -> Value {
    let mut v = w.fields();
    v["builtin"] = json!(n.is_builtin());
    canton_dr_cli::output::event_object("present", v)
}

/// The `{"type":"extra",...}` line.
pub fn extra_line(n: &NodeDar) -> Value {
    canton_dr_cli::output::event_object(
        "extra",
        json!({
            "mainPackageId": n.main_package_id,
            "name": n.name,
            "version": n.version,
            "description": n.description,
            "builtin": n.is_builtin(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::fake::node_dar;
    use chrono::{TimeZone, Utc};

    fn local(id: &str, name: &str, path: &str) -> Entry {
        Entry::Dar(LocalDar {
            path: path.into(),
            main_package_id: id.into(),
            name: name.into(),
            version: "1.0.0".into(),
            sha256: format!("sha-{id}"),
            size: 10,
        })
    }

    fn reg(id: &str, name: &str) -> DarUpload {
        DarUpload {
            main_package_id: id.into(),
            name: Some(name.into()),
            version: Some("2.0.0".into()),
            file_sha256: format!("rsha-{id}"),
            size_bytes: 20,
            source_path: Some(format!("/dars/{name}.dar")),
            uploaded_at: Utc.with_ymd_and_hms(2025, 11, 27, 6, 0, 0).unwrap(),
            recorded_by: "ops@host".into(),
            recorded_at: None,
        }
    }

    #[test]
    fn merges_by_main_package_id_not_name() {
        let w = wanted(
            &[
                local("b1", "token", "/d/token-a.dar"),
                local("b2", "token", "/d/token-b.dar"),
                local("b1", "token", "/d/copy.dar"),
            ],
            vec![reg("b1", "token"), reg("r1", "registry-only")],
        );
        let ids: Vec<&str> = w.iter().map(|w| w.main_package_id.as_str()).collect();
        assert_eq!(ids, ["r1", "b1", "b2"]);
        let b1 = &w[1];
        assert_eq!(b1.sources(), ["dir", "registry"]);
        assert_eq!(b1.path(), Some("/d/token-a.dar"), "first file wins");
        assert_eq!(b1.version(), Some("1.0.0"), "the file's facts win");
        assert_eq!(w[0].path(), Some("/dars/registry-only.dar"));
        assert_eq!(w[0].fields()["uploadedAt"], "2025-11-27T06:00:00.000000Z");
    }

    #[test]
    fn diff_splits_missing_present_extra() {
        let w = wanted(
            &[local("a", "a", "/a.dar"), local("b", "b", "/b.dar")],
            vec![],
        );
        let node = [
            node_dar("b", "b"),
            node_dar("z", "zeta"),
            node_dar("p", "canton-builtin-admin-workflow-ping"),
        ];
        let d = diff(w, &node);
        assert_eq!(d.missing.len(), 1);
        assert_eq!(d.missing[0].main_package_id, "a");
        assert_eq!(d.present.len(), 1);
        let extra: Vec<(&str, bool)> = d
            .extra
            .iter()
            .map(|n| (n.name.as_str(), n.is_builtin()))
            .collect();
        assert_eq!(
            extra,
            [
                ("canton-builtin-admin-workflow-ping", true),
                ("zeta", false)
            ]
        );
        assert_eq!(extra_line(&d.extra[0])["builtin"], true);
        assert_eq!(
            present_line(&d.present[0].0, &d.present[0].1)["type"],
            "present"
        );
        assert_eq!(missing_line(&d.missing[0])["path"], "/a.dar");
    }
}
