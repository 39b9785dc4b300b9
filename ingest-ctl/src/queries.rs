//! The named SQL statements behind `last`, `status` and every checkpoint read,
//! so that an exchange can point them at its own tables (`--queries FILE`).
//!
//! File format (as yesql / HugSQL / aiosql use it): each statement follows a
//! `-- name: NAME` line and runs until the next such line; a trailing `;` is
//! dropped; other `--` comments are kept (PostgreSQL ignores them). Lines
//! before the first `-- name:` may only be comments or blank. Each statement
//! gets the ingester name as `$1` (text) and returns at most one row.
//!
//! | name | columns |
//! |---|---|
//! | `last` | `record_time` timestamptz, `synchronizer_id` text, `offset` integer, `update_id` text, `epoch` integer |
//! | `checkpoint` | `offset` integer, `record_time` timestamptz, `synchronizer_id` text, `update_id` text or NULL, `epoch` integer |
//!
//! The built-in statements are in `default-queries.sql` (same format); a
//! file replaces the statements it names and keeps the others.

use canton_dr_cli::{Error, ErrorKind, Result};
use chrono::{DateTime, Utc};
use integration_db::error::db_error;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row};

/// The built-in statements.
pub const DEFAULT_QUERIES: &str = include_str!("default-queries.sql");

/// The statement names a file may define.
pub const NAMES: &[&str] = &["last", "checkpoint"];

/// Where a statement came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `default-queries.sql`, compiled in.
    Builtin,
    /// A `--queries` file.
    File(PathBuf),
}

/// One named statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuery {
    /// Its name (`last`, `checkpoint`).
    pub name: String,
    /// The SQL, without the trailing `;`.
    pub sql: String,
    /// Where it came from.
    pub origin: Origin,
}

impl NamedQuery {
    fn describe(&self) -> String {
        match &self.origin {
            Origin::Builtin => format!("built-in query `{}`", self.name),
            Origin::File(p) => format!("query `{}` from {}", self.name, p.display()),
        }
    }

    /// Maps a failure: a file's statement that PostgreSQL rejects is the
    /// file's fault (usage, naming it); connection trouble stays transient.
    fn error(&self, e: &tokio_postgres::Error) -> Error {
        let base = db_error(e);
        match (&self.origin, e.as_db_error()) {
            (Origin::File(p), Some(db)) if base.kind() != ErrorKind::Transient => Error::usage(
                format!("{} failed: {}", self.describe(), db.message()),
            )
            .with_hint(format!(
                "fix the statement in {}; it gets the ingester name as $1",
                p.display()
            )),
            _ => base,
        }
    }

    async fn query_opt(&self, c: &impl GenericClient, ingester: &str) -> Result<Option<Row>> {
        let statement = c
            .prepare(self.sql.as_str())
            .await
            .map_err(|e| self.error(&e))?;
        // A statement may ignore the ingester name (one ingester per table).
        let mut rows = match statement.params() {
            [] => c.query(&statement, &[]).await,
            [ty] if matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) => {
                c.query(&statement, &[&ingester]).await
            }
            [ty] => {
                return Err(Error::usage(format!(
                    "{} takes $1 as {ty}; it is the ingester name, a text",
                    self.describe()
                ))
                .with_hint("compare $1 with a text column, or cast it: $1::text"));
            }
            more => {
                return Err(Error::usage(format!(
                    "{} takes {} parameters; it gets only one, $1, the ingester name",
                    self.describe(),
                    more.len()
                )));
            }
        }
        .map_err(|e| self.error(&e))?;
        if rows.len() > 1 {
            return Err(Error::usage(format!(
                "{} returned {} rows for ingester \"{ingester}\"; it must return at most one",
                self.describe(),
                rows.len()
            )));
        }
        Ok(rows.pop())
    }
}

/// Parses the `-- name:` format; `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String, usize)> = Vec::new();
    let mut current: Option<(String, usize, Vec<&str>)> = None;
    let finish = |block: Option<(String, usize, Vec<&str>)>,
                  out: &mut Vec<(String, String, usize)>|
     -> Result<()> {
        if let Some((name, line, lines)) = block {
            let sql = lines.join("\n");
            let sql = sql.trim().trim_end_matches(';').trim_end().to_string();
            let has_code = sql
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
            if !has_code {
                return Err(Error::usage(format!(
                    "{origin} line {line}: query `{name}` has no SQL"
                )));
            }
            out.push((name, sql, line));
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if let Some(rest) = line.trim_start().strip_prefix("-- name:") {
            finish(current.take(), &mut out)?;
            let name = rest.trim().to_string();
            if !NAMES.contains(&name.as_str()) {
                return Err(Error::usage(format!(
                    "{origin} line {number}: unknown query name `{name}`"
                ))
                .with_hint(format!("the names are: {}", NAMES.join(", "))));
            }
            if let Some((_, _, first)) = out.iter().find(|(n, _, _)| *n == name) {
                return Err(Error::usage(format!(
                    "{origin} line {number}: query `{name}` is defined twice (first on line {first})"
                )));
            }
            current = Some((name, number, Vec::new()));
        } else if let Some((_, _, lines)) = current.as_mut() {
            lines.push(line);
        } else if !line.trim().is_empty() && !line.trim_start().starts_with("--") {
            return Err(Error::usage(format!(
                "{origin} line {number}: SQL before the first `-- name: NAME` line"
            ))
            .with_hint(
                "start each statement with a line `-- name: last` or `-- name: checkpoint`",
            ));
        }
    }
    finish(current.take(), &mut out)?;
    Ok(out.into_iter().map(|(n, s, _)| (n, s)).collect())
}

/// The statements in use: built-in, replaced by a file's where it names them.
#[derive(Debug, Clone)]
pub struct QuerySet {
    last: NamedQuery,
    checkpoint: NamedQuery,
}

impl QuerySet {
    /// The built-in statements.
    pub fn builtin() -> QuerySet {
        let parsed = parse(DEFAULT_QUERIES, "default-queries.sql")
            .expect("the built-in queries parse (checked by a unit test)");
        let get = |name: &str| NamedQuery {
            name: name.to_string(),
            sql: parsed
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_default(),
            origin: Origin::Builtin,
        };
        QuerySet {
            last: get("last"),
            checkpoint: get("checkpoint"),
        }
    }

    /// The built-in statements, replaced by those of `path` if given.
    pub fn load(path: Option<&Path>) -> Result<QuerySet> {
        let mut set = QuerySet::builtin();
        let Some(path) = path else {
            return Ok(set);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read --queries {}: {e}", path.display())))?;
        let parsed = parse(&text, &path.display().to_string())?;
        if parsed.is_empty() {
            return Err(
                Error::usage(format!("--queries {} defines no query", path.display())).with_hint(
                    "start each statement with a line `-- name: last` or `-- name: checkpoint`",
                ),
            );
        }
        for (name, sql) in parsed {
            let q = NamedQuery {
                name: name.clone(),
                sql,
                origin: Origin::File(path.to_path_buf()),
            };
            match name.as_str() {
                "last" => set.last = q,
                _ => set.checkpoint = q,
            }
        }
        Ok(set)
    }

    /// The `last` statement.
    pub fn last_query(&self) -> &NamedQuery {
        &self.last
    }

    /// The `checkpoint` statement.
    pub fn checkpoint_query(&self) -> &NamedQuery {
        &self.checkpoint
    }

    /// The last ingested transaction of `ingester`, if any.
    pub async fn last(
        &self,
        c: &impl GenericClient,
        ingester: &str,
    ) -> Result<Option<LastTransaction>> {
        let q = &self.last;
        let Some(row) = q.query_opt(c, ingester).await? else {
            return Ok(None);
        };
        let cols = Columns {
            query: q,
            row: &row,
        };
        Ok(Some(LastTransaction {
            record_time: cols.time("record_time")?,
            synchronizer_id: cols.text("synchronizer_id")?,
            offset: cols.int("offset")?,
            update_id: cols.text("update_id")?,
            epoch: cols.int("epoch")?,
        }))
    }

    /// The checkpoint of `ingester`, if it committed anything yet.
    pub async fn checkpoint(
        &self,
        c: &impl GenericClient,
        ingester: &str,
    ) -> Result<Option<CheckpointView>> {
        let q = &self.checkpoint;
        let Some(row) = q.query_opt(c, ingester).await? else {
            return Ok(None);
        };
        let cols = Columns {
            query: q,
            row: &row,
        };
        Ok(Some(CheckpointView {
            offset: cols.int("offset")?,
            record_time: cols.time("record_time")?,
            synchronizer_id: cols.text("synchronizer_id")?,
            update_id: cols.opt_text("update_id")?,
            epoch: cols.int("epoch")?,
        }))
    }
}

/// The last ingested transaction, exactly as `ingest-ctl last` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastTransaction {
    /// Its record time (`tRecovery`).
    #[serde(with = "integration_db::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Its synchronizer.
    pub synchronizer_id: String,
    /// Its offset (in the numbering of the epoch it was ingested in).
    pub offset: i64,
    /// Its update id.
    pub update_id: String,
    /// The offset epoch it was ingested in.
    pub epoch: i64,
}

/// Where an ingester is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    /// Offset of the last update or offset checkpoint committed.
    pub offset: i64,
    /// Its record time.
    #[serde(with = "integration_db::serde_time")]
    pub record_time: DateTime<Utc>,
    /// Its synchronizer.
    pub synchronizer_id: String,
    /// Its update id; `None` for an offset checkpoint.
    pub update_id: Option<String>,
    /// The offset epoch it belongs to.
    pub epoch: i64,
}

/// Typed, named access to a result row with errors that name the query.
struct Columns<'a> {
    query: &'a NamedQuery,
    row: &'a Row,
}

impl Columns<'_> {
    fn index(&self, name: &str) -> Result<(usize, &Type)> {
        self.row
            .columns()
            .iter()
            .enumerate()
            .find(|(_, c)| c.name() == name)
            .map(|(i, c)| (i, c.type_()))
            .ok_or_else(|| {
                let have: Vec<&str> = self.row.columns().iter().map(|c| c.name()).collect();
                Error::usage(format!(
                    "{} returns no column \"{name}\" (it returns: {})",
                    self.query.describe(),
                    have.join(", ")
                ))
                .with_hint(format!(
                    "name the columns as {}",
                    expected(&self.query.name)
                ))
            })
    }

    fn wrong_type(&self, name: &str, ty: &Type, want: &str) -> Error {
        Error::usage(format!(
            "column \"{name}\" of {} is {ty}, not {want}",
            self.query.describe()
        ))
        .with_hint(format!("cast it in the statement, e.g. \"{name}\"::{want}"))
    }

    fn null(&self, name: &str) -> Error {
        Error::usage(format!(
            "{} returned NULL in column \"{name}\"",
            self.query.describe()
        ))
        .with_hint(format!("columns: {}", expected(&self.query.name)))
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        let (i, ty) = self.index(name)?;
        let v = match *ty {
            Type::INT8 => self.row.try_get::<_, Option<i64>>(i).ok().flatten(),
            Type::INT4 => self
                .row
                .try_get::<_, Option<i32>>(i)
                .ok()
                .flatten()
                .map(i64::from),
            Type::INT2 => self
                .row
                .try_get::<_, Option<i16>>(i)
                .ok()
                .flatten()
                .map(i64::from),
            _ => return Err(self.wrong_type(name, ty, "bigint")),
        };
        Ok(v)
    }

    fn int(&self, name: &str) -> Result<i64> {
        self.opt_int(name)?.ok_or_else(|| self.null(name))
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>> {
        let (i, ty) = self.index(name)?;
        if *ty != Type::TIMESTAMPTZ {
            return Err(self.wrong_type(name, ty, "timestamptz"));
        }
        self.row
            .try_get::<_, Option<DateTime<Utc>>>(i)
            .ok()
            .flatten()
            .ok_or_else(|| self.null(name))
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        let (i, ty) = self.index(name)?;
        match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Ok(self.row.try_get::<_, Option<String>>(i).ok().flatten())
            }
            _ => Err(self.wrong_type(name, ty, "text")),
        }
    }

    fn text(&self, name: &str) -> Result<String> {
        self.opt_text(name)?.ok_or_else(|| self.null(name))
    }
}

fn expected(query: &str) -> &'static str {
    match query {
        "last" => "record_time, synchronizer_id, \"offset\", update_id, epoch",
        _ => "\"offset\", record_time, synchronizer_id, update_id, epoch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_queries_parse() {
        let parsed = parse(DEFAULT_QUERIES, "default-queries.sql").unwrap();
        let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["last", "checkpoint"]);
        assert!(parsed[0].1.starts_with("-- The last ingested transaction"));
        assert!(parsed[0].1.ends_with("IS NOT NULL"), "{}", parsed[0].1);
        let set = QuerySet::builtin();
        assert!(
            set.checkpoint_query()
                .sql
                .contains("FROM ingestion_checkpoint")
        );
    }

    #[test]
    fn blocks_split_on_name_lines() {
        let text = "-- my mapping\n\n-- name: checkpoint\nSELECT 1\n  FROM t;\n\n-- name: last\nSELECT 2;\n";
        let parsed = parse(text, "f.sql").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("checkpoint".to_string(), "SELECT 1\n  FROM t".to_string()),
                ("last".to_string(), "SELECT 2".to_string())
            ]
        );
    }

    #[test]
    fn bad_files() {
        let e = parse("SELECT 1;\n-- name: last\nSELECT 2", "f.sql").unwrap_err();
        assert_eq!(
            e.message(),
            "f.sql line 1: SQL before the first `-- name: NAME` line"
        );
        let e = parse("-- name: lats\nSELECT 1", "f.sql").unwrap_err();
        assert_eq!(e.message(), "f.sql line 1: unknown query name `lats`");
        assert_eq!(e.hint(), Some("the names are: last, checkpoint"));
        let e = parse("-- name: last\nSELECT 1\n-- name: last\nSELECT 2", "f.sql").unwrap_err();
        assert_eq!(
            e.message(),
            "f.sql line 3: query `last` is defined twice (first on line 1)"
        );
        let e = parse("-- name: last\n-- only a comment\n;\n", "f.sql").unwrap_err();
        assert_eq!(e.message(), "f.sql line 1: query `last` has no SQL");
    }

    #[test]
    fn a_file_replaces_only_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sql");
        std::fs::write(&path, "-- name: last\nSELECT 1").unwrap();
        let set = QuerySet::load(Some(&path)).unwrap();
        assert_eq!(set.last_query().sql, "SELECT 1");
        assert_eq!(set.last_query().origin, Origin::File(path.clone()));
        assert_eq!(set.checkpoint_query().origin, Origin::Builtin);
        std::fs::write(&path, "-- nothing here\n").unwrap();
        let e = QuerySet::load(Some(&path)).unwrap_err();
        assert!(e.message().ends_with("defines no query"), "{}", e.message());
        let e = QuerySet::load(Some(&dir.path().join("missing.sql"))).unwrap_err();
        assert!(
            e.message().starts_with("cannot read --queries"),
            "{}",
            e.message()
        );
    }
}
