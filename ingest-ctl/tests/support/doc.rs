//! The SQL of `docs/ingestion-contract.md`, exactly as printed there: every
//! ```` ```sql ```` fence, split into `-- name: NAME` statements.

use std::collections::BTreeMap;

/// One ```` ```sql ```` fence.
#[derive(Debug, Clone)]
pub struct Fence {
    /// Its whole text.
    pub text: String,
    /// Its named statements, in order.
    pub statements: Vec<(String, String)>,
}

/// The contract document's text.
pub fn contract_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ingestion-contract.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every ```` ```sql ```` fence of `markdown`.
pub fn fences(markdown: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim() == "```sql" => current = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim() == "```" => {
                let text = lines.join("\n");
                out.push(Fence {
                    statements: split(&text),
                    text,
                });
                current = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    assert!(current.is_none(), "an unterminated ```sql fence");
    out
}

/// `-- name: NAME` blocks of one fence (text before the first is dropped).
fn split(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("-- name:") {
            out.push((name.trim().to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line);
        }
    }
    out.into_iter()
        .map(|(n, l)| (n, l.join("\n").trim().trim_end_matches(';').to_string()))
        .collect()
}

/// Every named statement of the document, by name (names are unique).
pub fn statements() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for fence in fences(&contract_text()) {
        for (name, sql) in fence.statements {
            assert!(
                map.insert(name.clone(), sql).is_none(),
                "statement `{name}` appears twice in the contract"
            );
        }
    }
    map
}

/// The fence holding the example `--queries` file (it names `last`).
pub fn example_queries_file() -> String {
    fences(&contract_text())
        .into_iter()
        .find(|f| f.statements.iter().any(|(n, _)| n == "last"))
        .expect("the contract shows an example queries file")
        .text
}
