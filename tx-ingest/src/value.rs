//! Reading Daml values of the Ledger API (`value.proto`) the way the
//! token-standard parser needs them: record fields by label when the stream is
//! verbose, else by declaration order (canton-wire.md §4b), and typed accessors
//! that say what they expected when a value has another shape.

use canton_proto::ledger::{Record, TextMap, Value, Variant, value::Sum};
use std::fmt;

/// A value that does not have the shape the token standard declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// Where in the value (e.g. `transfer.instrumentId.admin`).
    pub path: String,
    /// What was expected and what was found.
    pub problem: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

impl std::error::Error for ShapeError {}

/// Result of decoding a value.
pub type ShapeResult<T> = Result<T, ShapeError>;

fn shape_error(path: &str, problem: impl Into<String>) -> ShapeError {
    ShapeError {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// The name of a value's variant, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match &value.sum {
        None => "an empty value",
        Some(Sum::Unit(_)) => "unit",
        Some(Sum::Bool(_)) => "a bool",
        Some(Sum::Int64(_)) => "an int64",
        Some(Sum::Date(_)) => "a date",
        Some(Sum::Timestamp(_)) => "a timestamp",
        Some(Sum::Numeric(_)) => "a numeric",
        Some(Sum::Party(_)) => "a party",
        Some(Sum::Text(_)) => "a text",
        Some(Sum::ContractId(_)) => "a contract id",
        Some(Sum::Optional(_)) => "an optional",
        Some(Sum::List(_)) => "a list",
        Some(Sum::TextMap(_)) => "a text map",
        Some(Sum::GenMap(_)) => "a gen map",
        Some(Sum::Record(_)) => "a record",
        Some(Sum::Variant(_)) => "a variant",
        Some(Sum::Enum(_)) => "an enum",
    }
}

/// A record being read field by field; `path` names it in errors.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a, 'p> {
    record: &'a Record,
    path: &'p str,
}

impl<'a, 'p> RecordView<'a, 'p> {
    /// Views `record`, called `path` in errors.
    pub fn new(record: &'a Record, path: &'p str) -> Self {
        RecordView { record, path }
    }

    /// True when the fields carry labels (a verbose stream).
    fn labelled(&self) -> bool {
        self.record.fields.iter().any(|f| !f.label.is_empty())
    }

    /// The field declared at `index` with name `label`: found by label when
    /// the record is labelled, else by position.
    pub fn field(&self, index: usize, label: &str) -> ShapeResult<&'a Value> {
        let found = if self.labelled() {
            self.record.fields.iter().find(|f| f.label == label)
        } else {
            self.record.fields.get(index)
        };
        found
            .and_then(|f| f.value.as_ref())
            .ok_or_else(|| shape_error(&join(self.path, label), "field is missing"))
    }

    /// The field `label` if present (by label, or by position `index`).
    pub fn field_opt(&self, index: usize, label: &str) -> Option<&'a Value> {
        self.field(index, label).ok()
    }
}

/// `parent.child` (or just `child` at the top).
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// The record inside `value`.
pub fn as_record<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a Record> {
    match &value.sum {
        Some(Sum::Record(r)) => Ok(r),
        _ => Err(expected(path, "a record", value)),
    }
}

/// The party inside `value`.
pub fn as_party<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a str> {
    match &value.sum {
        Some(Sum::Party(p)) if !p.is_empty() => Ok(p),
        Some(Sum::Party(_)) => Err(shape_error(path, "party is empty")),
        _ => Err(expected(path, "a party", value)),
    }
}

/// The text inside `value`.
pub fn as_text<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a str> {
    match &value.sum {
        Some(Sum::Text(t)) => Ok(t),
        _ => Err(expected(path, "a text", value)),
    }
}

/// The contract id inside `value`.
pub fn as_contract_id<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a str> {
    match &value.sum {
        Some(Sum::ContractId(c)) => Ok(c),
        _ => Err(expected(path, "a contract id", value)),
    }
}

/// The variant inside `value`.
pub fn as_variant<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a Variant> {
    match &value.sum {
        Some(Sum::Variant(v)) => Ok(v),
        _ => Err(expected(path, "a variant", value)),
    }
}

/// The text map inside `value`.
pub fn as_text_map<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a TextMap> {
    match &value.sum {
        Some(Sum::TextMap(m)) => Ok(m),
        _ => Err(expected(path, "a text map", value)),
    }
}

/// The Daml Decimal inside `value`, checked against the Ledger API's numeric
/// syntax `[+-]?\d{1,38}(.\d{0,37})?`.
pub fn as_numeric<'a>(value: &'a Value, path: &str) -> ShapeResult<&'a str> {
    match &value.sum {
        Some(Sum::Numeric(n)) if is_numeric(n) => Ok(n),
        Some(Sum::Numeric(n)) => Err(shape_error(path, format!("\"{n}\" is not a numeric"))),
        _ => Err(expected(path, "a numeric", value)),
    }
}

/// `[+-]?\d{1,38}(.\d{0,37})?`
pub fn is_numeric(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    (1..=38).contains(&int.len()) && digits(int) && frac.is_none_or(|f| f.len() <= 37 && digits(f))
}

/// The value inside an `Optional` (`None` for an empty optional); a value
/// that is not an optional is returned as is (lenient towards encoders that
/// leave out the wrapper).
pub fn unwrap_optional(value: &Value) -> Option<&Value> {
    match &value.sum {
        Some(Sum::Optional(o)) => o.value.as_deref(),
        _ => Some(value),
    }
}

fn expected(path: &str, what: &str, value: &Value) -> ShapeError {
    shape_error(path, format!("expected {what}, found {}", kind_of(value)))
}

/// Builders of values for tests (of this crate and of its users).
pub mod build {
    use canton_proto::ledger::{
        Identifier, List, Optional, Record, RecordField, TextMap, Value, Variant, text_map,
        value::Sum,
    };

    /// A party.
    pub fn party(p: &str) -> Value {
        Value {
            sum: Some(Sum::Party(p.into())),
        }
    }
    /// A text.
    pub fn text(t: &str) -> Value {
        Value {
            sum: Some(Sum::Text(t.into())),
        }
    }
    /// A numeric.
    pub fn numeric(n: &str) -> Value {
        Value {
            sum: Some(Sum::Numeric(n.into())),
        }
    }
    /// A contract id.
    pub fn contract_id(c: &str) -> Value {
        Value {
            sum: Some(Sum::ContractId(c.into())),
        }
    }
    /// A timestamp (µs since the epoch).
    pub fn timestamp(micros: i64) -> Value {
        Value {
            sum: Some(Sum::Timestamp(micros)),
        }
    }
    /// Unit.
    pub fn unit() -> Value {
        Value {
            sum: Some(Sum::Unit(())),
        }
    }
    /// A list.
    pub fn list(elements: Vec<Value>) -> Value {
        Value {
            sum: Some(Sum::List(List { elements })),
        }
    }
    /// `Some value` / `None`.
    pub fn optional(value: Option<Value>) -> Value {
        Value {
            sum: Some(Sum::Optional(Box::new(Optional {
                value: value.map(Box::new),
            }))),
        }
    }
    /// A text map.
    pub fn text_map(entries: &[(&str, Value)]) -> Value {
        Value {
            sum: Some(Sum::TextMap(TextMap {
                entries: entries
                    .iter()
                    .map(|(k, v)| text_map::Entry {
                        key: (*k).into(),
                        value: Some(v.clone()),
                    })
                    .collect(),
            })),
        }
    }
    /// A record; with `labelled` the fields carry their names (verbose), else
    /// only their order.
    pub fn record(labelled: bool, fields: Vec<(&str, Value)>) -> Record {
        Record {
            record_id: None::<Identifier>,
            fields: fields
                .into_iter()
                .map(|(label, value)| RecordField {
                    label: if labelled {
                        label.into()
                    } else {
                        String::new()
                    },
                    value: Some(value),
                })
                .collect(),
        }
    }
    /// A record as a value.
    pub fn record_value(labelled: bool, fields: Vec<(&str, Value)>) -> Value {
        Value {
            sum: Some(Sum::Record(record(labelled, fields))),
        }
    }
    /// A variant.
    pub fn variant(constructor: &str, value: Value) -> Value {
        Value {
            sum: Some(Sum::Variant(Box::new(Variant {
                variant_id: None,
                constructor: constructor.into(),
                value: Some(Box::new(value)),
            }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn fields_by_label_or_position() {
        let labelled = record(true, vec![("a", text("x")), ("b", party("p"))]);
        let view = RecordView::new(&labelled, "r");
        assert_eq!(as_party(view.field(0, "b").unwrap(), "r.b").unwrap(), "p");
        let positional = record(false, vec![("a", text("x")), ("b", party("p"))]);
        let view = RecordView::new(&positional, "r");
        assert_eq!(as_party(view.field(1, "b").unwrap(), "r.b").unwrap(), "p");
        let e = view.field(2, "c").unwrap_err();
        assert_eq!(e.to_string(), "r.c: field is missing");
    }

    #[test]
    fn shape_errors_name_the_path() {
        let e = as_party(&text("t"), "transfer.sender").unwrap_err();
        assert_eq!(
            e.to_string(),
            "transfer.sender: expected a party, found a text"
        );
        let e = as_numeric(&numeric("1e5"), "amount").unwrap_err();
        assert_eq!(e.to_string(), "amount: \"1e5\" is not a numeric");
    }

    #[test]
    fn numeric_syntax() {
        for ok in ["0", "200.0000000000", "-1.5", "+3.", "1."] {
            assert!(is_numeric(ok), "{ok}");
        }
        for bad in ["", ".5", "1.2.3", "abc", "1e5", "--1", &"9".repeat(39)] {
            assert!(!is_numeric(bad), "{bad}");
        }
    }

    #[test]
    fn optionals_unwrap() {
        assert_eq!(unwrap_optional(&optional(None)), None);
        assert_eq!(
            unwrap_optional(&optional(Some(text("x")))),
            Some(&text("x"))
        );
        assert_eq!(unwrap_optional(&text("y")), Some(&text("y")));
    }
}
